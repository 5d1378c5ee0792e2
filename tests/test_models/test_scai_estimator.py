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
