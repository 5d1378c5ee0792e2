"""Every shipped SCAI config builds (no download: init_cfg=None) and runs one forward."""
import glob
import os

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose.registry import MODELS
from mmpose.utils import register_all_modules
from mmpose_scai.models import SCAIHead
from tests.test_models.builders import fake_samples

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(glob.glob(os.path.join(REPO, 'configs/body_2d_keypoint/scai/*/*.py')))


def test_configs_exist():
    names = {os.path.basename(p) for p in CONFIGS}
    for arch in ('hrnet-w32_scai-8xb64', 'hrnet-w48_scai-8xb32', 'res152_scai-8xb32'):
        for size in ('256x192', '384x288'):
            assert f'td-hm_{arch}-210e_coco-{size}.py' in names
    assert 'td-hm_hrnet-w32_scai-paper-8xb64-210e_coco-256x192.py' in names
    # CrowdPose: the same backbones (HRNet-W48 on a base config of ours)
    for arch in ('hrnet-w32_scai-8xb64', 'hrnet-w48_scai-8xb32', 'res152_scai-8xb64'):
        assert f'td-hm_{arch}-210e_crowdpose-256x192.py' in names
    for arch in ('hrnet-w32_scai-8xb64', 'hrnet-w48_scai-8xb64', 'res152_scai-8xb32'):
        assert f'td-hm_{arch}-210e_mpii-256x256.py' in names


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_config_builds_and_runs_one_forward(path):
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['mmpose_scai']
    model = MODELS.build(cfg.model).eval()
    assert isinstance(model.head, SCAIHead)
    assert cfg.model.backbone.get('init_cfg') is None
    # a model-zoo base, except the CPU LSPET models and HRNet-W48 on CrowdPose
    if '/lspet/' not in path and 'w48_scai-8xb32-210e_crowdpose' not in path:
        assert cfg.load_from.startswith('https://download.openmmlab.com/mmpose/')
    meta = parse_pose_metainfo(dict(cfg.model.head.get('metainfo') or dict(
        from_file='configs/_base_/datasets/coco.py')))
    k = meta['num_keypoints']
    assert model.head.base_head.out_channels == k == len(model.head.chains.keypoint_names)
    if '/crowdpose/' in path:
        assert k == 14 and cfg.model.head.chains == dict(layout='crowdpose')
    if '/mpii/' in path:
        assert k == 16 and cfg.model.head.chains == dict(layout='mpii')
    if '/crowdpose/' in path or '/mpii/' in path:
        assert set(model.head.chains.names) == {
            'left_arm', 'right_arm', 'left_leg', 'right_leg'}
    w, h = cfg.codec['input_size']
    hw, hh = cfg.codec['heatmap_size']
    model.head.chain_labelled.fill_(1)
    samples = fake_samples(1, heatmap_size=(hw, hh))
    for s in samples:
        s.set_metainfo(dict(input_size=(w, h), input_center=np.array([w / 2, h / 2]),
                            input_scale=np.array([w, h], dtype=np.float64),
                            flip_indices=meta['flip_indices']))
    with torch.no_grad():
        out = model.predict(torch.rand(1, 3, h, w), samples)
    assert out[0].pred_instances.keypoints.shape == (1, k, 2)
    assert out[0].pred_instances.keypoint_self_errors.shape == (1, k)


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_config_trains_at_scale(path):
    """Distributed wrapper, training checks and per-network schedules whose stage
    boundaries are the config's own stage lengths."""
    cfg = Config.fromfile(path)
    assert cfg.model_wrapper_cfg.type == 'SCAIDistributedDataParallel'
    assert cfg.default_hooks.scai_train_check.type == 'SCAITrainCheckHook'
    sched, pre = cfg.param_scheduler, cfg.model.train_cfg.scai.pretrain_epochs
    assert set(sched) == {'phi', 'gamma', 'corr'}
    assert [s.get('begin', 0) for s in sched.phi] == [0] and sched.phi[0].end == pre
    assert [s.get('begin', 0) for s in sched.gamma] == [0]
    assert [s.begin for s in sched.corr] == [pre]
    # one flip convention: the benchmark's shift_heatmap=True for MSRA heatmaps
    decoder = cfg.model.head.base_head.decoder.type
    assert cfg.model.test_cfg.shift_heatmap is (decoder != 'UDPHeatmap')
