"""The BlazePose config + converted checkpoint through MMPose's own inference API.

Builds the LSPET config's model, loads the checkpoint written by
``tools/fetch_blazepose.py`` (fetched and converted on first use) and runs
``inference_topdown`` on a real LSPET-test photo with its GT box: the prediction must
land on that person's labelled joints.
"""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from mmpose_scai.utils import blazepose_checkpoint_path

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'body_2d_keypoint', 'topdown_heatmap',
                  'blazepose', 'td-hm_blazepose-ghum-heavy_lspet-256x256.py')
LSPET = osp.join(REPO, 'data', 'demo', 'lspet')
IMAGE_ID = 52  # a person with all 12 limb joints labelled


@pytest.fixture(scope='module')
def model(blazepose_heavy):
    from mmpose.apis import init_model
    torch.manual_seed(0)
    return init_model(CONFIG, blazepose_heavy, device='cpu')


def test_checkpoint_loads_exactly(model, blazepose_heavy):
    state = torch.load(blazepose_heavy, map_location='cpu')['state_dict']
    own = model.state_dict()
    assert set(state) == set(own)
    for k, v in state.items():
        assert torch.equal(own[k], v), k


def test_inference_topdown_finds_the_person(model):
    from mmpose.apis import inference_topdown
    with open(osp.join(LSPET, 'annotations', 'test.json')) as f:
        ann = next(a for a in json.load(f)['annotations'] if a['image_id'] == IMAGE_ID)
    x, y, w, h = ann['bbox']
    gt = np.asarray(ann['keypoints'], dtype=np.float32).reshape(17, 3)
    labelled = gt[:, 2] > 0
    assert labelled.sum() == 12
    (result, ) = inference_topdown(model, osp.join(LSPET, 'images', f'im{IMAGE_ID:05d}.jpg'),
                                   np.array([[x, y, x + w, y + h]]), bbox_format='xyxy')
    pred = result.pred_instances.keypoints[0]
    scores = result.pred_instances.keypoint_scores[0]
    assert pred.shape == (17, 2) and ((scores >= 0) & (scores <= 1)).all()
    err = np.linalg.norm(pred[labelled] - gt[labelled, :2], axis=-1) / max(w, h)
    # every labelled joint within 10 % of the box's longer side, most within 5 %
    assert err.max() < 0.10, err
    assert np.median(err) < 0.05, err
    assert scores[labelled].mean() > 0.5


def test_rotation_tta_turns_an_inverted_person_upright(model):
    """LSPET-test image 130 (demo subset): an upside-down gymnast. Upright, BlazePose
    misses most joints; the 4-rotation choice picks 180 degrees and finds them."""
    from mmpose.apis import inference_topdown
    with open(osp.join(LSPET, 'annotations', 'test.json')) as f:
        ann = next(a for a in json.load(f)['annotations'] if a['image_id'] == 130)
    x, y, w, h = ann['bbox']
    gt = np.asarray(ann['keypoints'], dtype=np.float32).reshape(17, 3)
    labelled = gt[:, 2] > 0
    errors = {}
    for rotation_tta in (False, True):
        model.test_cfg['rotation_tta'] = rotation_tta
        try:
            (result, ) = inference_topdown(model, osp.join(LSPET, 'images', 'im00130.jpg'),
                                           np.array([[x, y, x + w, y + h]]),
                                           bbox_format='xyxy')
        finally:
            model.test_cfg['rotation_tta'] = False
        pred = result.pred_instances.keypoints[0]
        errors[rotation_tta] = np.linalg.norm(pred[labelled] - gt[labelled, :2],
                                              axis=-1) / max(w, h)
    assert np.median(errors[False]) > 0.2
    assert list(result.pred_instances.rotation) == [180]
    assert errors[True].max() < 0.15 and np.median(errors[True]) < 0.06


def test_scai_head_wraps_the_blazepose_head(model, blazepose_heavy):
    """The BlazePose head as a SCAIHead's base: f is the backbone's 48-channel map, the
    checkpoint's ``head.*`` keys land in ``base_head``, and the heatmaps are the
    estimator's (in [0, 1])."""
    from mmpose.registry import MODELS
    head = MODELS.build(dict(type='SCAIHead', base_head=model.cfg.model.head))
    assert head.base_head.final_layer.in_channels == 48
    state = torch.load(blazepose_heavy, map_location='cpu')['state_dict']
    head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith('head.')},
                         strict=False)
    torch.testing.assert_close(head.base_head.final_layer.weight,
                               state['head.final_layer.weight'])
    head.eval()
    with torch.no_grad():
        feats = model.backbone(torch.rand(1, 3, 256, 256))
        heatmaps, f = head.base_forward(feats)
        expected = model.head(feats)
    assert f.shape == (1, 48, 64, 64)
    torch.testing.assert_close(heatmaps, expected)
    assert heatmaps.min() >= 0 and heatmaps.max() <= 1


def test_config_load_from_is_the_converted_checkpoint(monkeypatch, tmp_path):
    """The config names the checkpoint by text; it must stay the converter's path."""
    from mmengine.config import Config
    for cache in (None, str(tmp_path)):
        if cache is None:
            monkeypatch.delenv('SCAI_CACHE_DIR', raising=False)
        else:
            monkeypatch.setenv('SCAI_CACHE_DIR', cache)
        cfg = Config.fromfile(CONFIG)
        assert osp.expanduser(cfg.load_from) == blazepose_checkpoint_path('heavy')
