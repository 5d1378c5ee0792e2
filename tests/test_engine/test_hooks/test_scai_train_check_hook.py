"""SCAI training in a real MMEngine Runner: exact resume, per-stage learning rates and
the loud failures of SCAITrainCheckHook (tiny model on the real COCO sample)."""
import copy
import os.path as osp
import shutil

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmpose.registry import MODELS
from mmpose.utils import register_all_modules
from tests.test_engine.scai_train_cfg import LR, full_labels, tiny_train_cfg


class LrRecorder(Hook):
    """Each network's lr at each (epoch, iteration) before the step."""

    def __init__(self):
        self.lrs = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        lr = runner.optim_wrapper.get_lr()
        self.lrs[(runner.epoch, batch_idx)] = {n: lr[f'{n}.lr'][0] for n in LR}


@pytest.fixture(scope='module')
def cfg(data_root, tmp_path_factory):
    ann = full_labels(data_root, str(tmp_path_factory.mktemp('ann')))
    register_all_modules(init_default_scope=True)
    return tiny_train_cfg(data_root, ann, batch_size=4, max_epochs=3)


def one_epoch(cfg) -> dict:
    """Options for a 1-epoch run (pre-training only: no C schedule to begin)."""
    return dict(train_cfg=dict(cfg.train_cfg, max_epochs=1), param_scheduler=None)


@pytest.fixture(scope='module')
def base_ckpt(cfg, tmp_path_factory):
    """An ordinary MMPose checkpoint of the base (keys ``head.*``, a single optimizer's
    state), as a SCAI config's ``load_from`` names it."""
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    state = {k.replace('head.base_head.', 'head.'): v for k, v in model.state_dict().items()
             if not k.startswith(('head.refiner.', 'head.chain_labelled'))}
    optim = torch.optim.Adam(model.backbone.parameters()).state_dict()
    path = str(tmp_path_factory.mktemp('base') / 'base.pth')
    torch.save(dict(state_dict=state, optimizer=optim, meta=dict(epoch=6, iter=600)), path)
    return path


def run(cfg, work_dir, raises=None, **options):
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = osp.basename(str(work_dir))
    cfg.update(options)
    runner = Runner.from_cfg(cfg)
    recorder = LrRecorder()
    runner.register_hook(recorder)
    if raises is None:
        runner.train()
    else:
        with pytest.raises(raises[0], match=raises[1]):
            runner.train()
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        return runner, recorder.lrs, f.read()


def load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def assert_same(a, b, path=''):
    """Recursive equality of checkpoint parts (tensors bit-identical)."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f'{path}.{k}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f'{path}[{i}]')
    else:
        assert a == b, path


@pytest.fixture(scope='module')
def straight(cfg, base_ckpt, tmp_path_factory):
    """3 epochs (Φ/Γ pre-training, C, multi-round) from the base, a checkpoint per
    epoch."""
    return run(cfg, tmp_path_factory.mktemp('straight'), load_from=base_ckpt)


def test_resume_continues_exactly(cfg, base_ckpt, straight, tmp_path):
    runner, _, _ = straight
    # interrupted after epoch 1: its work dir holds epoch_1.pth only
    shutil.copy(osp.join(runner.work_dir, 'epoch_1.pth'), tmp_path / 'epoch_1.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    # resume=True with the config's load_from (the base): MMEngine alone would resume
    # from the base checkpoint ("Mismatched state_dict"); the hook resumes epoch_1.pth
    resumed, lrs, log = run(cfg, tmp_path, resume=True, load_from=base_ckpt)
    assert f'SCAI: resuming from {tmp_path / "epoch_1.pth"}' in log
    assert min(lrs) == (1, 0)  # only epochs 2 and 3 ran
    # epoch 2: C's first stage; epoch 3: multi-round (R drawn per iteration)
    for epoch, stage in ((2, 1), (3, 2)):
        a = load(osp.join(runner.work_dir, f'epoch_{epoch}.pth'))
        b = load(tmp_path / f'epoch_{epoch}.pth')
        assert_same(a['state_dict'], b['state_dict'])
        assert set(a['optimizer']) == {'phi', 'gamma', 'corr'}
        assert_same(a['optimizer'], b['optimizer'])  # Adam moments, steps and lr
        assert_same(a['param_schedulers'], b['param_schedulers'])
        assert (a['meta']['epoch'], a['meta']['iter']) == \
            (b['meta']['epoch'], b['meta']['iter'])
        hub_a, hub_b = a['message_hub']['log_scalars'], b['message_hub']['log_scalars']
        for key in ('train/scai_stage', 'train/corr.lr', 'train/gamma.lr',
                    'train/loss_corr'):
            assert hub_a[key].current() == hub_b[key].current(), key
        assert hub_b['train/scai_stage'].current() == stage


def test_resume_without_a_checkpoint_starts_from_the_base(cfg, base_ckpt, tmp_path):
    runner, _, log = run(cfg, tmp_path, resume=True, load_from=base_ckpt, **one_epoch(cfg))
    assert f'SCAI: resume requested but {tmp_path} holds no checkpoint; training starts ' \
           f'from the base checkpoint {base_ckpt}' in log
    assert 'the frozen base model was not loaded' not in log
    assert runner.model.base_keys_loaded[0] == runner.model.base_keys_loaded[1] > 0


def test_c_starts_its_stage_at_its_configured_lr(straight):
    _, lrs, log = straight
    assert lrs[(0, 0)] == LR
    # epoch 1 is C's first: C at its configured lr, Γ decayed once (x0.5 per epoch)
    assert lrs[(1, 0)]['corr'] == LR['corr'] == 4.1e-4
    assert lrs[(1, 0)]['gamma'] == pytest.approx(LR['gamma'] * 0.5)
    assert 'the frozen base model was not loaded' not in log
    assert "C's lr schedule" not in log


def test_schedule_not_following_the_stage_warns(cfg, tmp_path):
    bad = copy.deepcopy(cfg)
    bad.param_scheduler.corr[0].begin = 0
    bad.param_scheduler.phi[0].end = 2
    _, lrs, log = run(bad, tmp_path)
    assert ("SCAI: C's lr schedule ExponentialLR begins at epoch 0, C's stage at epoch 1"
            in log)


def test_unloaded_base_warns_before_the_first_iteration(cfg, tmp_path):
    _, _, log = run(cfg, tmp_path / 'none', **one_epoch(cfg))
    warning = 'SCAI: the frozen base model was not loaded: no checkpoint was loaded ' \
              '(load_from=None)'
    assert warning in log and 'Set load_from to' in log
    assert log.index(warning) < log.index('Epoch(train) [1][1/')


def test_checkpoint_without_base_weights_warns(cfg, tmp_path):
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    refiner = {k: v for k, v in model.state_dict().items() if k.startswith('head.refiner.')}
    torch.save(dict(state_dict=refiner, meta=dict()), tmp_path / 'refiner.pth')
    _, _, log = run(cfg, tmp_path / 'run', load_from=str(tmp_path / 'refiner.pth'),
                    **one_epoch(cfg))
    assert f'the checkpoint {tmp_path / "refiner.pth"} holds only 0 of the' in log
    assert 'Set load_from to' in log


def test_fully_masked_training_warns_then_stops(cfg, tmp_path):
    masked = copy.deepcopy(cfg)
    # no anchor of the untrained base reaches this score: every instance is masked
    masked.model.head.refiner.min_anchor_score = 0.99
    _, _, log = run(masked, tmp_path, raises=(RuntimeError, 'no chain instance of epoch 1'),
                    **one_epoch(cfg))
    for it in (1, 2):  # logger interval 1, 2 iterations
        assert ('SCAI: 100.0% of the chain instances of the 1 iteration(s) up to '
                f'iteration {it} were masked') in log
    assert 'min_anchor_score=0.99' in log
