"""``init_model`` with the shipped configs: no data is read (a wrong ``SCAI_DATA_ROOT``
does not matter), base checkpoints load with an explanation of the missing refiner keys,
MMPose 0.x base checkpoints (the CrowdPose zoo) land in ``base_head``."""
import os.path as osp
from unittest import mock

import numpy as np
import pytest
import torch
from mmengine.config import Config

import mmpose_scai  # noqa: F401
from mmpose.apis import inference_topdown, init_model
from mmpose.registry import MODELS
from benchmarks.data_root import DATA_ROOT_ENV, repo_root

SCAI = osp.join(repo_root(), 'configs', 'body_2d_keypoint', 'scai')
LSPET_SCAI = osp.join(SCAI, 'lspet', 'td-hm_res18_scai-1xb32-6e_lspet-128x96.py')
LSPET_BASE = osp.join(repo_root(), 'configs', 'body_2d_keypoint', 'topdown_heatmap',
                      'lspet', 'td-hm_res18_1xb32-6e_lspet-128x96.py')
IMAGE = osp.join(repo_root(), 'data', 'demo', 'coco_sample', 'images', '000000000785.jpg')


def _save(config: str, path) -> str:
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)


def test_wrong_data_root_does_not_matter(tmp_path, monkeypatch):
    ckpt = _save(LSPET_SCAI, tmp_path / 'scai.pth')
    missing = str(tmp_path / 'no' / 'such' / 'root')
    monkeypatch.setenv(DATA_ROOT_ENV, missing)
    monkeypatch.chdir(tmp_path)  # nor does the working directory
    model = init_model(LSPET_SCAI, ckpt, device='cpu')
    assert model.cfg.test_dataloader.dataset.data_root.startswith(missing)
    result = inference_topdown(model, IMAGE, bboxes=np.array([[380., 60., 520., 400.]]))
    assert result[0].pred_instances.keypoints.shape == (1, 17, 2)
    assert 'keypoint_self_errors' in result[0].pred_instances


def test_base_checkpoint_explains_missing_refiner_keys(tmp_path):
    ckpt = _save(LSPET_BASE, tmp_path / 'base.pth')
    with mock.patch('mmengine.logging.print_log') as log:
        model = init_model(LSPET_SCAI, ckpt, device='cpu')
    notes = [c.args[0] for c in log.call_args_list
             if 'SCAIHead: loading' in str(c.args[0])]
    assert len(notes) == 1 and 'base (non-SCAI) checkpoint' in notes[0]
    n_refiner = sum(k.startswith(('refiner.', 'chain_labelled'))
                    for k in model.head.state_dict())
    assert f'Its {n_refiner} refiner entries' in notes[0]
    # the base weights did load
    base = torch.load(ckpt, weights_only=True)['state_dict']
    assert torch.equal(model.head.base_head.final_layer.weight.cpu(),
                       base['head.final_layer.weight'])


def test_scai_checkpoint_loads_without_the_note(tmp_path):
    ckpt = _save(LSPET_SCAI, tmp_path / 'scai.pth')
    with mock.patch('mmengine.logging.print_log') as log:
        init_model(LSPET_SCAI, ckpt, device='cpu')
    assert not [c for c in log.call_args_list if 'SCAIHead: loading' in str(c.args[0])]


@pytest.mark.parametrize('arch', ['hrnet-w32_scai-8xb64'])
def test_mmpose_0x_crowdpose_base_lands_in_base_head(tmp_path, arch):
    """The CrowdPose model zoo has MMPose 0.x checkpoints (``keypoint_head.*``)."""
    config = osp.join(SCAI, 'crowdpose', f'td-hm_{arch}-210e_crowdpose-256x192.py')
    cfg = Config.fromfile(config)
    torch.manual_seed(1)
    base = MODELS.build(dict(cfg.model, type='TopdownPoseEstimator',
                             head=cfg.model.head.base_head))
    old = {k.replace('head.', 'keypoint_head.', 1) if k.startswith('head.') else k: v
           for k, v in base.state_dict().items()}
    torch.save({'state_dict': old}, tmp_path / 'base_0x.pth')
    model = init_model(config, str(tmp_path / 'base_0x.pth'), device='cpu')
    assert torch.equal(model.head.base_head.final_layer.weight,
                       base.head.final_layer.weight)
    assert model.head.base_head.final_layer.weight.shape[0] == 14
