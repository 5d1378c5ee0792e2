"""SCAITTAHook in a real MMEngine Runner on the real COCO sample (tiny ResNet-18 SCAI)."""
import copy
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmpose.registry import HOOKS
from mmpose_scai.tta import TestTimeAdapter
from mmpose_scai.models import SCAIRefiner
from benchmarks.data_root import DATA_ROOT_ENV, repo_root

CONFIG = osp.join(repo_root(), 'configs', 'body_2d_keypoint', 'topdown_heatmap', 'coco',
                  'td-hm_res18_1xb16-1e_coco-sample-128x96.py')
HOOK = dict(type='SCAITTAHook', steps=3, lr=1e-2, select_quantile=None)
PERSONS = 16  # one test batch of the sample keeps the runs short on 2 cores
NET = dict(type='ChainConvNet', width=8, dilations=(1, 2, 4), context_channels=4)


@pytest.fixture(scope='module')
def plain_cfg(data_root):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DATA_ROOT_ENV, data_root)
        cfg = Config.fromfile(CONFIG)
    cfg.default_hooks.visualization = dict(type='PoseVisualizationHook', enable=False)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=10)
    cfg.randomness = dict(seed=0)  # the briefly trained SCAI must be the same every run
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.indices = PERSONS
    cfg.test_dataloader = cfg.val_dataloader
    return cfg


def scai_cfg(plain_cfg, flip_test=False):
    """The tiny sample model wrapped in SCAIHead, trained by SCAIPoseEstimator."""
    cfg = copy.deepcopy(plain_cfg)
    cfg.model = dict(
        type='SCAIPoseEstimator',
        data_preprocessor=cfg.model.data_preprocessor,
        backbone=cfg.model.backbone,
        head=dict(type='SCAIHead', base_head=cfg.model.head,
                  refiner=dict(phi=NET, gamma=NET, min_anchor_score=0.,
                               corr=dict(NET, dilations=(1, 2), context_channels=0))),
        train_cfg=dict(scai=dict(pretrain_epochs=1, correct_epochs=1)),
        test_cfg=dict(flip_test=flip_test, shift_heatmap=False, output_heatmaps=True))
    cfg.optim_wrapper = dict(constructor='SCAIOptimWrapperConstructor',
                             phi=dict(optimizer=dict(type='Adam', lr=1e-3)),
                             gamma=dict(optimizer=dict(type='Adam', lr=1e-3)),
                             corr=dict(optimizer=dict(type='Adam', lr=1e-3)))
    cfg.param_scheduler = None
    return cfg


def make_runner(cfg, tmp_path, name, hooks=(), ckpt=None, dump=False) -> Runner:
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = str(tmp_path / name)
    cfg.experiment_name = name
    cfg.custom_hooks = [dict(h) for h in hooks]
    cfg.load_from = ckpt
    if dump:
        cfg.test_evaluator = [cfg.test_evaluator, dict(
            type='DumpResults', out_file_path=str(tmp_path / f'{name}.pkl'))]
    return Runner.from_cfg(cfg)


@pytest.fixture(scope='module')
def checkpoint(plain_cfg, tmp_path_factory):
    """A briefly trained SCAI: one epoch of Φ/Γ pre-training, one of C (base untrained)."""
    tmp = tmp_path_factory.mktemp('scai_train')
    runner = make_runner(scai_cfg(plain_cfg), tmp, 'train')
    runner.train()
    assert (runner.model.head.chain_labelled > 0).all()
    return osp.join(runner.work_dir, 'epoch_2.pth')


def weights(runner):
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def heatmaps(path):
    with open(path, 'rb') as f:
        return np.stack([r['pred_fields']['heatmaps'].numpy() for r in pickle.load(f)])


@pytest.mark.parametrize('flip_test', [False, True], ids=['plain', 'flip'])
def test_hook_adapts_in_runner_test_and_leaves_weights(plain_cfg, checkpoint, tmp_path,
                                                       flip_test):
    cfg = scai_cfg(plain_cfg, flip_test)
    ref = make_runner(cfg, tmp_path, 'ref', ckpt=checkpoint, dump=True)
    ref.test()
    runner = make_runner(cfg, tmp_path, 'tta', [HOOK], ckpt=checkpoint, dump=True)
    runner.load_or_resume()
    before = weights(runner)
    metrics = runner.test()
    assert 'coco/AP' in metrics
    assert_same(before, weights(runner))
    head = runner.model.head
    assert head.adapter is None  # detached after the loop
    hook = next(h for h in runner.hooks if type(h).__name__ == 'SCAITTAHook')
    rows = hook.adapter.history
    assert len(rows) == len(runner.test_dataloader)
    assert all(r['steps'] >= 1 for r in rows)
    assert any(r['accepted_frac'] > 0 for r in rows)
    assert all(r['E_s_after'] <= r['E_s_before'] for r in rows)  # per-instance safeguard
    # the adaptation changed the output of at least one person (the untrained base's
    # heatmaps are too flat for its decoded keypoints to move)
    changed = np.abs(heatmaps(tmp_path / 'tta.pkl') - heatmaps(tmp_path / 'ref.pkl'))
    assert changed.reshape(PERSONS, -1).max(1).max() > 0
    # the statistics reached the message hub and the ordinary log
    scalars = runner.message_hub.log_scalars
    assert scalars['test/tta_E_s_before'].current() == rows[-1]['E_s_before']
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        log = f.read()
    assert 'SCAI TTA (test, ' in log and 'tta_E_s_after' in log


def test_val_phase_and_stale_adapter_after_an_exception(plain_cfg, checkpoint, tmp_path,
                                                        monkeypatch):
    runner = make_runner(scai_cfg(plain_cfg), tmp_path, 'boom',
                         [dict(HOOK, phases=('val', ))], ckpt=checkpoint)
    runner.load_or_resume()
    before = weights(runner)
    head = runner.model.head
    calls = dict(n=0)
    real = SCAIRefiner.self_error

    def failing(self, inp, state):
        if head.adapter is not None and torch.is_grad_enabled():
            calls['n'] += 1
            if calls['n'] == 3:  # mid-way through the adaptation steps
                raise RuntimeError('boom')
        return real(self, inp, state)

    monkeypatch.setattr(SCAIRefiner, 'self_error', failing)
    with pytest.raises(RuntimeError, match='boom'):
        runner.val()
    assert_same(before, weights(runner))
    assert head.adapter is not None  # MMEngine called no after_val: the adapter is stale
    # the test loop (not adapting: phases=('val',)) detaches it first
    runner.test()
    assert head.adapter is None
    assert_same(before, weights(runner))
    monkeypatch.setattr(SCAIRefiner, 'self_error', real)
    runner.val()
    assert head.adapter is None
    assert 'val/tta_E_s_before' in runner.message_hub.log_scalars
    assert 'test/tta_E_s_before' not in runner.message_hub.log_scalars
    assert_same(before, weights(runner))


def test_hook_on_a_model_without_scai_head_is_a_clear_error(plain_cfg, tmp_path):
    runner = make_runner(plain_cfg, tmp_path, 'plain', [HOOK])
    with pytest.raises(TypeError, match='SCAITTAHook .* SCAIHead.* HeatmapHead'):
        runner.test()


@pytest.mark.parametrize('cfg, match', [
    (dict(phases=('train', )), 'phases must be .* got .*train'),
    (dict(phases=()), 'phases must be'),
    (dict(steps=-1), 'steps must be an int >= 0, got -1'),
    (dict(mode='sometimes'), "mode must be one of .* got 'sometimes'"),
    (dict(preset='turbo'), "preset must be one of .* got 'turbo'"),
])
def test_invalid_hook_settings_fail_at_construction(cfg, match):
    with pytest.raises(ValueError, match=match):
        HOOKS.build(dict(type='SCAITTAHook', **cfg))


def test_head_test_cfg_tta_without_a_runner(plain_cfg, checkpoint, data_root):
    from mmpose.apis import inference_topdown, init_model
    cfg = scai_cfg(plain_cfg)
    cfg.model.test_cfg['tta'] = dict(preset='default', select_quantile=None, lr=1e-2)
    model = init_model(cfg, checkpoint, device='cpu')
    before = {k: v.clone() for k, v in model.state_dict().items()}
    img = osp.join(cfg.test_dataloader.dataset.data_root, 'images')
    img = osp.join(img, sorted(__import__('os').listdir(img))[0])
    results = inference_topdown(model, img)
    adapter = model.head.adapter
    assert isinstance(adapter, TestTimeAdapter) and adapter.steps == 2
    assert adapter.lr == 1e-2 and len(adapter.history) == 1
    assert adapter.history[0]['selected_frac'] == 1.0
    assert np.isfinite(results[0].pred_instances.keypoints).all()
    inference_topdown(model, img)
    assert model.head.adapter is adapter and len(adapter.history) == 2  # built once
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
