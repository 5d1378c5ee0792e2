"""``MMPoseInferencer`` with a SCAI config on a real photo of the demo subset: given boxes
are used, ``keypoint_self_errors`` reach the predictions (dicts and JSON), the
visualisation is written, and a missing detector is a clear error (B12, B11)."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

import mmpose_scai  # noqa: F401  (shims, modules, the mmpose_scai:: scope)
from mmpose.apis import MMPoseInferencer
from mmpose.registry import MODELS
from mmpose_scai.compat import inferencer as inferencer_shim
from benchmarks.data_root import repo_root

IMAGE = osp.join(repo_root(), 'data', 'demo', 'coco_sample', 'images', '000000000785.jpg')
# the small LSPET SCAI model, reached through the scope; every chain refined
TINY = '''
_base_ = ['mmpose_scai::body_2d_keypoint/scai/lspet/td-hm_res18_scai-1xb32-6e_lspet-128x96.py']
model = dict(head=dict(refiner=dict(min_anchor_score=0.)))
'''
PADDING = 1.25  # GetBBoxCenterScale in the test pipeline


@pytest.fixture(scope='module')
def model_files(tmp_path_factory):
    """A config in a folder outside the repository and random weights for it."""
    folder = tmp_path_factory.mktemp('user')
    cfg_path = folder / 'scai_tiny.py'
    cfg_path.write_text(TINY)
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(cfg_path)).model)
    model.head.chain_labelled.fill_(1)  # as if every chain had been trained
    ckpt = folder / 'scai_tiny.pth'
    torch.save({'state_dict': model.state_dict()}, ckpt)
    return str(cfg_path), str(ckpt)


@pytest.fixture(scope='module')
def inferencer(model_files):
    cfg, ckpt = model_files
    return MMPoseInferencer(pose2d=cfg, pose2d_weights=ckpt, device='cpu')


def _inside(keypoints: np.ndarray, box, margin: float) -> bool:
    """All keypoints inside the padded crop of ``box`` (+ ``margin`` pixels)."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w, h = (x2 - x1), (y2 - y1)
    w, h = max(w, h * 0.75), max(h, w / 0.75)  # the 96x128 input's aspect ratio
    half_w, half_h = w * PADDING / 2 + margin, h * PADDING / 2 + margin
    return bool((np.abs(keypoints[:, 0] - cx) <= half_w).all()
                and (np.abs(keypoints[:, 1] - cy) <= half_h).all())


def test_given_boxes_are_used(inferencer, tmp_path):
    boxes = [[380., 60., 520., 400.], [10., 10., 90., 130., 0.7]]  # skier; empty snow
    result = next(inferencer(IMAGE, bboxes=[boxes], out_dir=str(tmp_path), kpt_thr=0.,
                             draw_bbox=True))
    preds = result['predictions'][0]
    assert len(preds) == 2
    for pred, box in zip(preds, boxes):
        assert np.allclose(pred['bbox'][0], box[:4])
        keypoints = np.asarray(pred['keypoints'])
        assert keypoints.shape == (17, 2)
        # one heatmap cell of margin (the crop over 32 rows of heatmap)
        cell = (box[3] - box[1]) * PADDING / 32 * 2
        assert _inside(keypoints, box[:4], margin=cell), (keypoints, box)
    assert preds[1]['bbox_score'] == pytest.approx(0.7)
    # keypoint_self_errors: one value per keypoint, finite where refined
    errors = preds[0]['keypoint_self_errors']
    assert len(errors) == 17 and any(e is not None for e in errors)
    assert all(e is None or (np.isfinite(e) and e >= 0) for e in errors)
    # the predictions JSON carries them too (NaN written as null)
    (name, ) = os.listdir(tmp_path / 'predictions')
    with open(tmp_path / 'predictions' / name) as f:
        dumped = json.load(f)
    assert [d['keypoint_self_errors'] for d in dumped] == [p['keypoint_self_errors']
                                                          for p in preds]
    # the visualisation (opencv backend, numpy 2): the photo with boxes and keypoints
    (vis_name, ) = os.listdir(tmp_path / 'visualizations')
    vis = cv2.imread(str(tmp_path / 'visualizations' / vis_name))
    photo = cv2.imread(IMAGE)
    assert vis.shape == photo.shape
    changed = np.abs(vis.astype(int) - photo.astype(int)).sum(-1) > 150
    assert changed[60:400, 380:520].mean() > 0.01 and changed[10:130, 10:90].mean() > 0.01
    assert changed[200:, 150:350].mean() < 0.002  # JPEG noise only, away from the boxes


def test_without_boxes_the_whole_image_is_one_person(inferencer):
    preds = next(inferencer(IMAGE))['predictions'][0]
    h, w = cv2.imread(IMAGE).shape[:2]
    assert len(preds) == 1 and np.allclose(preds[0]['bbox'][0], [0, 0, w, h])
    assert len(preds[0]['keypoint_self_errors']) == 17


def test_bad_box_is_a_clear_error(inferencer):
    with pytest.raises(ValueError, match=r'each box must be \[x1, y1, x2, y2\]'):
        next(inferencer(IMAGE, bboxes=[[[1., 2., 3.]]]))


def test_missing_detector_names_cause_and_workaround(model_files, tmp_path, monkeypatch):
    """A COCO-type config wants MMDetection's person detector; where mmdet cannot be
    imported (mmcv-lite), the error says why and what to do instead."""
    from mmpose.apis.inferencers import base_mmpose_inferencer
    cfg, ckpt = model_files
    coco = tmp_path / 'scai_tiny_coco.py'
    coco.write_text(f"_base_ = ['{osp.basename(cfg)}']\ndataset_type = 'CocoDataset'\n")
    os.symlink(cfg, tmp_path / osp.basename(cfg))
    monkeypatch.setattr(base_mmpose_inferencer, 'has_mmdet', False)
    with pytest.raises(RuntimeError, match="det_model='whole_image'") as e:
        MMPoseInferencer(pose2d=str(coco), pose2d_weights=ckpt, device='cpu')
    cause = inferencer_shim.mmdet_import_error()
    if cause:  # this stack: "No module named 'mmcv.ops.roi_align'"
        assert cause in str(e.value)
    # the workaround works
    inf = MMPoseInferencer(pose2d=str(coco), pose2d_weights=ckpt, device='cpu',
                           det_model='whole_image')
    preds = next(inf(IMAGE, bboxes=[[[380., 60., 520., 400.]]]))['predictions'][0]
    assert len(preds) == 1 and np.allclose(preds[0]['bbox'][0], [380, 60, 520, 400])
