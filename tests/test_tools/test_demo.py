"""The photo demo (``demo/scai_image_demo.py``) and ``make demo`` (``tools/demo.py``) on
real photos with the BlazePose base, run the way a user runs them."""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from benchmarks.data_root import repo_root

ROOT = repo_root()
LSPET = osp.join(ROOT, 'data', 'demo', 'lspet')
USER_CFG = '''
_base_ = ['mmpose_scai::body_2d_keypoint/topdown_heatmap/blazepose/td-hm_blazepose-ghum-heavy_lspet-256x256.py',
          'mmpose_scai::_base_/scai_heatmap.py']
model = dict(type='SCAIPoseEstimator',
             head=dict(_delete_=True, type='SCAIHead', base_head=_base_.model.head,
                       **_base_.scai_head),
             train_cfg=_base_.scai_train_cfg, test_cfg=dict(_base_.scai_test_cfg))
'''


@pytest.fixture(scope='module')
def scai_model(tmp_path_factory, blazepose_heavy):
    """A SCAI config on BlazePose in a user folder and a checkpoint: the converted base
    and an untrained refiner whose chains all count as labelled (so it refines)."""
    import mmpose_scai  # noqa: F401
    from mmpose.apis import init_model
    folder = tmp_path_factory.mktemp('user')
    cfg = folder / 'bp_scai.py'
    cfg.write_text(USER_CFG)
    torch.manual_seed(0)
    model = init_model(str(cfg), blazepose_heavy, device='cpu')
    model.head.chain_labelled.fill_(1)
    ckpt = folder / 'bp_scai.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=model.dataset_meta)),
               ckpt)
    return folder, cfg, ckpt


def _gt(image_id: int):
    with open(osp.join(LSPET, 'annotations', 'test.json')) as f:
        ann = json.load(f)
    img = next(i for i in ann['images'] if i['id'] == image_id)
    person = next(a for a in ann['annotations'] if a['image_id'] == image_id)
    x, y, w, h = person['bbox']
    return img['file_name'], [x, y, x + w, y + h], np.array(person['keypoints']).reshape(-1, 3)


def test_photo_demo_with_a_box_from_a_user_folder(scai_model):
    folder, cfg, ckpt = scai_model
    with open(osp.join(LSPET, 'annotations', 'test.json')) as f:
        image_id = json.load(f)['images'][0]['id']
    name, box, gt = _gt(image_id)
    out = folder / 'vis'
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'demo', 'scai_image_demo.py'), str(cfg), str(ckpt),
         '--input', osp.join(LSPET, 'images', name), '--bboxes', *map(str, box),
         '--output-root', str(out)], cwd=folder, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    png = out / (osp.splitext(name)[0] + '_scai.png')
    assert png.is_file() and png.stat().st_size > 10_000
    preds = json.loads((out / 'predictions.json').read_text())[name]
    assert len(preds) == 1
    p = preds[0]
    assert p['bbox'] == pytest.approx(box)
    base = np.array(p['keypoints_base'])
    assert base.shape == (17, 2) and len(p['keypoint_self_errors']) == 17
    assert any(e is not None for e in p['keypoint_self_errors'])  # refined chains
    moved = np.linalg.norm(np.array(p['keypoints_scai']) - base, axis=1) > 0
    assert np.array(p['moved']).sum() <= moved.sum()
    # the given box was used: the strong base lands near the labelled joints
    seen = gt[:, 2] > 0
    err = np.linalg.norm(base[seen] - gt[seen, :2], axis=1)
    assert np.median(err) < 0.1 * max(box[2] - box[0], box[3] - box[1])


def test_photo_demo_needs_whole_boxes(scai_model):
    folder, cfg, ckpt = scai_model
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'demo', 'scai_image_demo.py'), str(cfg), str(ckpt),
         '--input', osp.join(LSPET, 'images'), '--bboxes', '1', '2', '3'],
        cwd=folder, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and 'x1 y1 x2 y2 per person' in proc.stderr


def test_make_demo_on_shipped_weights(tmp_path):
    """``make demo``'s script, from another folder, on 3 persons per split: the table of
    the three settings and one overlay per split, with the shipped refiner."""
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'demo.py'), '--limit', '3', '--num-vis', '1',
         '--out-dir', str(tmp_path / 'demo')], cwd=tmp_path, capture_output=True, text=True,
        timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert 'checkpoints/scai_blazepose-ghum-heavy_lspet-256x256.pth' in out
    rows = [line for line in out.splitlines() if line.startswith('| ')]
    assert [r.split('|')[1].strip() for r in rows[1:]] == ['base', '+SCAI', '+SCAI+TTA']
    ap = [float(cell.split()[0]) for r in rows[1:] for cell in r.split('|')[2:4]]
    assert all(0 < a <= 100 for a in ap)  # the strong base scores on real persons
    assert 'loading annotations' not in out and 'Epoch(' not in out  # no log noise
    pngs = sorted((tmp_path / 'demo' / 'vis').glob('*.png'))
    assert [p.name.split('_')[0] for p in pngs] == ['coco', 'lspet']
