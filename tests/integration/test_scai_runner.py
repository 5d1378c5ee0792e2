"""SCAI end to end through MMEngine's Runner on real LSPET photos: staged training of the
refinement networks on a frozen base, then a test loop scored by CocoMetric."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from benchmarks.data_root import DATA_ROOT_ENV, repo_root

CONFIG = osp.join(repo_root(), 'configs', 'body_2d_keypoint', 'scai', 'lspet',
                  'td-hm_res18_scai-1xb32-6e_lspet-128x96.py')


@pytest.fixture(scope='module')
def cfg(data_root):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DATA_ROOT_ENV, data_root)
        cfg = Config.fromfile(CONFIG)
    # tiny and fast: 3 epochs (one per stage) of 2 iterations on 32 real images
    cfg.model.backbone.update(base_channels=16)
    cfg.model.head.base_head.update(in_channels=128, deconv_out_channels=(32, 32, 32))
    cfg.model.head.refiner.min_anchor_score = 0.  # the base here is untrained
    cfg.model.train_cfg.scai.update(pretrain_epochs=1, correct_epochs=1)
    cfg.train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=10)
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[split]
        loader.update(batch_size=16, num_workers=0, persistent_workers=False)
        loader.dataset.indices = 32
    cfg.default_hooks.visualization = dict(type='PoseVisualizationHook', enable=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=3)
    return cfg


def test_scai_trains_by_stage_and_tests_with_coco_metric(cfg, tmp_path):
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = str(tmp_path)
    # an ordinary MMPose top-down checkpoint (keys `head.*`) as the frozen base
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules
    register_all_modules()
    model = MODELS.build(cfg.model)
    model.init_weights()
    base = {k.replace('head.base_head.', 'head.'): v for k, v in model.state_dict().items()
            if not k.startswith(('head.refiner.', 'head.chain_labelled'))}
    torch.save(dict(state_dict=base, meta=dict()), tmp_path / 'base.pth')
    cfg.load_from = str(tmp_path / 'base.pth')
    runner = Runner.from_cfg(cfg)
    runner.train()

    hub = runner.message_hub
    for key in ('train/loss_phi', 'train/loss_gamma', 'train/loss_corr', 'train/l1_minus_l2'):
        assert key in hub.log_scalars, key
    assert hub.get_scalar('train/scai_stage').current() == 2  # reached multi-round
    trained = runner.model.state_dict()
    for k, v in base.items():  # the base is frozen: weights and BN statistics unchanged
        key = k.replace('head.', 'head.base_head.') if k.startswith('head.') else k
        assert torch.equal(trained[key], v), k
    assert osp.exists(osp.join(cfg.work_dir, 'epoch_3.pth'))

    metrics = runner.test()
    assert 'coco/AP' in metrics and 0. <= metrics['coco/AP'] < 1.
    assert 'test/scai_E_s' in runner.message_hub.log_scalars
