"""The embedded demo subset is real data that ``tools/make_demo_subset.py`` reproduces."""
import filecmp
import json
import os.path as osp
import subprocess
import sys

from benchmarks.data_root import repo_root

DEMO = osp.join(repo_root(), 'data', 'demo')


def _tree(root):
    import os
    return sorted(osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_small_and_documented():
    files = _tree(DEMO)
    size = sum(osp.getsize(osp.join(DEMO, f)) for f in files)
    assert size < 2 * 1024**2
    assert 'README.md' in files
    for ann, n_images in (('coco_sample/annotations/person_keypoints.json', 4),
                          ('lspet/annotations/test.json', 20)):
        with open(osp.join(DEMO, ann)) as f:
            coco = json.load(f)
        assert len(coco['images']) == n_images
        folder = osp.join(DEMO, ann.split('/')[0], 'images')
        assert all(osp.isfile(osp.join(folder, im['file_name'])) for im in coco['images'])


def test_regenerated_identically(data_root, tmp_path):
    subprocess.run([sys.executable, osp.join(repo_root(), 'tools', 'make_demo_subset.py'),
                    '--src', data_root, '--dst', str(tmp_path)], check=True,
                   capture_output=True)
    expected = [f for f in _tree(DEMO) if f != 'README.md']
    assert _tree(tmp_path) == expected
    match, mismatch, errors = filecmp.cmpfiles(DEMO, tmp_path, expected, shallow=False)
    assert not mismatch and not errors
