"""``benchmarks.demo`` (``make demo``): cached checkpoints, tiny training on real
data, the comparison rows and the before/after overlays."""
import json
import os
import os.path as osp

import numpy as np
import pytest

from benchmarks.demo import (ROWS, DemoSettings, cached_models, most_changed, run_demo,
                              table)
from benchmarks.data_root import repo_root

DEMO_ROOT = osp.join(repo_root(), 'data', 'demo')


def test_cached_models_resolves_relative_paths(tmp_path):
    bench = tmp_path / 'bench'
    bench.mkdir()
    (bench / 'base.pth').write_bytes(b'x')
    (bench / 'scai.pth').write_bytes(b'x')
    rel = osp.relpath(str(bench), repo_root())
    report = dict(base=dict(checkpoint=osp.join(rel, 'base.pth')),
                  scai_checkpoints=dict(scai=osp.join(rel, 'scai.pth')),
                  tuning=dict(chosen=dict(rounds=3, start='base', tta=None, other=1)))
    (bench / 'report.json').write_text(json.dumps(report))
    got = cached_models(str(bench))
    assert got['base'] == str(bench / 'base.pth')
    assert got['scai'] == str(bench / 'scai.pth')
    assert got['test'] == dict(rounds=3, start='base', tta=None)
    os.remove(bench / 'scai.pth')  # a missing checkpoint: train instead
    assert cached_models(str(bench)) is None
    assert cached_models(str(tmp_path / 'nowhere')) is None


def test_most_changed_ranks_by_mean_shift():
    before = np.zeros((4, 3, 2))
    after = before.copy()
    after[1, :, 0] = 1.
    after[3, 0, 1] = 9.  # one joint far: mean 3 over the three joints
    assert most_changed(before, after, 2) == [3, 1]
    assert most_changed(before, after, 2, joints=[1, 2]) == [1]
    assert most_changed(before, before, 3) == []


def test_table_marks_illustrative_numbers():
    row = dict(AP=0.1, AP50=0.2, AR=0.3, pck=0.4, pck_distal=0.5, distal_err=0.6,
               seconds=1.0)
    res = dict(lspet=dict(n=5, rows={name: dict(row) for name, _, _ in ROWS}))
    text = table(res, illustrative=True)
    assert text.count('| lspet | 5 |') == 3 and 'ILLUSTRATIVE' in text
    assert 'ILLUSTRATIVE' not in table(res, illustrative=False)


@pytest.mark.skipif(not osp.isdir(DEMO_ROOT), reason='embedded demo subset missing')
def test_run_demo_tiny_on_the_embedded_subset(tmp_path):
    """The whole demo without benchmark checkpoints, on the subset a user cloning the
    repository alone has: trains a tiny base + SCAI, scores 3 rows, draws overlays."""
    s = DemoSettings(work_dir=str(tmp_path / 'demo'), use_benchmark=False,
                     data_root=DEMO_ROOT, train_images=14, base_epochs=1,
                     scai_stages=dict(pretrain_epochs=1, correct_epochs=1,
                                      multi_epochs=0, max_rounds=1),
                     test_images=6, num_vis=2, num_workers=0, log_interval=1,
                     batch_size=8)
    lines = []
    out = run_demo(s, lines.append)
    assert out['source'] == 'tiny' and out['illustrative']
    assert any('illustrative' in ln for ln in lines)
    assert set(out['rows']) == {'lspet', 'coco'}
    assert out['rows']['lspet']['n'] == 6 and out['rows']['coco']['n'] == 12
    for split in out['rows'].values():
        assert [k for k in split if k != 'n'] == [name for name, _, _ in ROWS]
        for name, _, refine in ROWS:
            assert 0. <= split[name]['AP'] <= 1.
    assert 'corrected_frac' in out['rows']['lspet']['+SCAI']
    for ckpt in out['checkpoints'].values():
        assert osp.isfile(ckpt if osp.isabs(ckpt) else osp.join(repo_root(), ckpt))
    with open(tmp_path / 'demo' / 'demo.json') as f:
        assert json.load(f)['table'] == out['table']
    for files in out['overlays'].values():
        for name in files:
            path = name if osp.isabs(name) else osp.join(repo_root(), name)
            assert osp.getsize(path) > 1000


def test_draw_overlays_writes_three_panels(tmp_path):
    """Overlays of fabricated predictions on two real demo images."""
    import mmcv

    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    from benchmarks.demo import draw_overlays

    root = osp.join(DEMO_ROOT, 'lspet')
    with open(osp.join(root, 'annotations', 'test.json')) as f:
        coco = json.load(f)
    anns = coco['annotations'][:3]
    gt = np.array([np.reshape(a['keypoints'], (17, 3)) for a in anns], np.float32)
    boxes = np.array([a['bbox'] for a in anns], np.float32)
    meta = dict(img_id=np.array([a['image_id'] for a in anns]),
                id=np.array([a['id'] for a in anns]),
                input_center=boxes[:, :2] + boxes[:, 2:] / 2,
                input_scale=boxes[:, 2:] * 1.25,
                gt_keypoints=gt[..., :2], gt_visible=(gt[..., 2] > 0).astype(np.float32))
    shift = np.zeros_like(gt[..., :2])
    shift[1] += 10.  # instance 1 moves most, instance 0 a little, instance 2 not at all
    shift[0, 9] += 3.
    res = dict(meta=meta, keypoints={'base': gt[..., :2], '+SCAI+TTA': gt[..., :2] + shift},
               metainfo=parse_pose_metainfo(dict(from_file='configs/_base_/datasets/coco.py')),
               dataset=dict(data_root=root + '/', ann_file='annotations/test.json',
                            data_prefix=dict(img='images/')))
    files = draw_overlays(res, '+SCAI+TTA', str(tmp_path), 5, print)
    assert [f.split('_')[0] for f in files] == ['00', '01']  # no prefix given
    assert files[0].endswith(f'_id{anns[1]["id"]}.jpg')
    img = mmcv.imread(str(tmp_path / files[0]))
    assert img.shape[0] == 256 and img.shape[1] > 2 * 256 * 0.5  # three panels side by side


def test_split_datasets_on_the_embedded_subset():
    """Tiny models train on the subset's first 14 LSPET images and are tested on the
    other 6; benchmark models are tested on the first ``test_images``."""
    from mmengine.config import Config

    from benchmarks.demo import SCAI_CONFIG, _datasets, split_datasets
    cfg = Config.fromfile(osp.join(repo_root(), SCAI_CONFIG))
    s = DemoSettings(test_images=200)
    train, _ = _datasets(s, DEMO_ROOT)
    assert train['type'] == 'CocoDataset' and train['indices'] == list(range(14))
    tiny = split_datasets(cfg, s, DEMO_ROOT)
    assert tiny['lspet']['indices'] == list(range(14, 20))
    assert tiny['coco']['ann_file'] == 'annotations/person_keypoints.json'
    bench = split_datasets(cfg, s, DEMO_ROOT, trained_here=False)
    assert bench['lspet']['indices'] == 200
