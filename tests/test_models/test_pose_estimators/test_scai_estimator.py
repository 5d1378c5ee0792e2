import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapperDict

from mmpose_scai.engine import SCAIOptimWrapperConstructor
from tests.test_models.builders import build, fake_batch, tiny_scai_cfg

OPTIM = dict(phi=dict(optimizer=dict(type='Adam', lr=1e-3)),
             gamma=dict(optimizer=dict(type='Adam', lr=1e-3)),
             corr=dict(optimizer=dict(type='Adam', lr=1e-3)))


def snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def changed(before, module):
    return [k for k, v in module.state_dict().items() if not torch.equal(before[k], v)]


def run_steps(model, optim, epoch, steps=2):
    MessageHub.get_current_instance().update_info('epoch', epoch)
    model.train()
    logs = [model.train_step(fake_batch(4, seed=i), optim) for i in range(steps)]
    return logs[-1]


@pytest.fixture
def model_and_optim():
    model = build(tiny_scai_cfg())
    return model, SCAIOptimWrapperConstructor(OPTIM)(model)


def test_frozen_base_is_bit_identical_after_training(model_and_optim):
    model, optim = model_and_optim
    base = [model.backbone, model.head.base_head]
    before = [snapshot(m) for m in base]
    assert any('running_mean' in k for k in before[0])  # BN statistics are checked
    for epoch in (0, 1, 2):
        run_steps(model, optim, epoch)
    for b, m in zip(before, base):
        assert changed(b, m) == []
    assert all(not p.requires_grad for m in base for p in m.parameters())
    assert not model.backbone.training and not model.head.base_head.training
    assert model.head.refiner.training


def test_stages_step_their_own_networks(model_and_optim):
    model, optim = model_and_optim
    nets = model.scai_networks()
    before = {n: snapshot(m) for n, m in nets.items()}
    logs = run_steps(model, optim, epoch=0)
    assert {'loss_phi', 'loss_gamma'} <= set(logs) and logs['scai_stage'] == 0
    assert changed(before['phi'], nets['phi']) and changed(before['gamma'], nets['gamma'])
    assert changed(before['corr'], nets['corr']) == []

    before = {n: snapshot(m) for n, m in nets.items()}
    logs = run_steps(model, optim, epoch=1)
    assert {'loss_corr', 'loss_gamma', 'l0', 'l1', 'l2', 'l1_minus_l2'} <= set(logs)
    assert logs['scai_stage'] == 1
    assert changed(before['phi'], nets['phi']) == []  # Φ is frozen after pre-training
    assert changed(before['corr'], nets['corr']) and changed(before['gamma'], nets['gamma'])
    assert run_steps(model, optim, epoch=5)['scai_stage'] == 2
    assert model.head.chain_labelled.min() > 0


def test_pretraining_lowers_the_prediction_loss(model_and_optim):
    model, optim = model_and_optim
    MessageHub.get_current_instance().update_info('epoch', 0)
    model.train()
    batch = fake_batch(4, seed=7)
    first = model.train_step(batch, optim)['loss_phi'].item()
    for _ in range(15):
        last = model.train_step(batch, optim)['loss_phi'].item()
    assert last < first


def test_gamma_uses_lc_adds_the_hinged_correction_loss():
    cfg = tiny_scai_cfg(loss_corr=dict(type='CorrectionLoss', margin=0.5))
    cfg['train_cfg']['scai']['gamma_uses_lc'] = True
    model = build(cfg)
    logs = run_steps(model, SCAIOptimWrapperConstructor(OPTIM)(model), epoch=1, steps=1)
    assert 'loss_gamma_lc' in logs


def test_optimizer_config_must_name_the_three_networks(model_and_optim):
    with pytest.raises(ValueError, match="missing \\['corr'\\]"):
        SCAIOptimWrapperConstructor(dict(phi=OPTIM['phi'], gamma=OPTIM['gamma']))
    model, _ = model_and_optim
    optim = SCAIOptimWrapperConstructor(OPTIM)(model)
    assert isinstance(optim, OptimWrapperDict) and set(optim.keys()) == {'phi', 'gamma', 'corr'}
    with pytest.raises(TypeError, match='SCAIOptimWrapperConstructor'):
        model.train_step(fake_batch(2), optim['phi'])


def amp_optim(model, **shared):
    """The optim_wrapper config as ``tools/train.py --amp`` leaves it: type and
    loss_scale at the top level, next to the per-network configs."""
    from mmengine.optim import build_optim_wrapper
    cfg = dict(constructor='SCAIOptimWrapperConstructor', **shared,
               phi=dict(optimizer=dict(type='SGD', lr=0.1)),
               gamma=dict(optimizer=dict(type='SGD', lr=0.1)),
               corr=dict(optimizer=dict(type='SGD', lr=0.1)))
    return build_optim_wrapper(model, cfg)


def test_amp_and_clip_grad_apply_to_every_network_step():
    from mmengine.optim import AmpOptimWrapper
    model = build(tiny_scai_cfg())
    optim = amp_optim(model, type='AmpOptimWrapper', loss_scale='dynamic',
                      clip_grad=dict(max_norm=1e-4))
    for name in ('phi', 'gamma', 'corr'):
        assert type(optim[name]) is AmpOptimWrapper
        assert optim[name].clip_grad_kwargs == dict(max_norm=1e-4)
    nets = model.scai_networks()
    dtypes = {}  # output dtypes of each network's convolutions
    hooks = [conv.register_forward_hook(
        lambda m, i, o, n=n: dtypes.setdefault(n, set()).add(o.dtype))
        for n, net in nets.items() for conv in net.modules()
        if isinstance(conv, torch.nn.Conv2d)]
    for epoch in (0, 1):
        before = {n: snapshot(m) for n, m in nets.items()}
        logs = run_steps(model, optim, epoch, steps=1)
        assert torch.isfinite(logs['loss'])
        stepped = ('phi', 'gamma') if epoch == 0 else ('corr', 'gamma')
        for n in stepped:  # SGD lr 0.1, gradient clipped to norm 1e-4: a tiny step
            moved = max((nets[n].state_dict()[k] - v).abs().max().item()
                        for k, v in before[n].items())
            assert 0 < moved <= 0.1 * 1e-4 + 1e-7, (n, moved)
    for h in hooks:
        h.remove()
    # every network ran under its wrapper's autocast (bfloat16 on the CPU)
    assert all(dtypes[n] == {torch.bfloat16} for n in ('phi', 'gamma', 'corr')), dtypes


def test_network_configs_override_the_shared_keys():
    from mmengine.optim import AmpOptimWrapper, OptimWrapper
    model = build(tiny_scai_cfg())
    cfg = dict(constructor='SCAIOptimWrapperConstructor', type='AmpOptimWrapper',
               clip_grad=dict(max_norm=1.),
               phi=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3)),
               gamma=dict(optimizer=dict(type='Adam', lr=1e-3), clip_grad=None),
               corr=dict(optimizer=dict(type='Adam', lr=1e-3)))
    from mmengine.optim import build_optim_wrapper
    optim = build_optim_wrapper(model, cfg)
    assert type(optim['phi']) is OptimWrapper and type(optim['corr']) is AmpOptimWrapper
    assert optim['phi'].clip_grad_kwargs == dict(max_norm=1.)
    assert not optim['gamma'].clip_grad_kwargs
    with pytest.raises(ValueError, match='its own optimizer'):
        SCAIOptimWrapperConstructor(dict(OPTIM, optimizer=dict(type='Adam')))
