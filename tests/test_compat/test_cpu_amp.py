"""B16: ``AmpOptimWrapper`` (``--amp``) on a host without CUDA: bfloat16 autocast."""
import pytest
import torch
from torch import nn

from mmpose_scai.compat import DISABLE_ENV, cpu_amp

BUILD = '''
import json, torch
compat.apply_compat()
from mmengine.optim import AmpOptimWrapper
try:
    AmpOptimWrapper(optimizer=torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1))
    print(json.dumps(dict(built=True)))
except AssertionError as e:
    print(json.dumps(dict(built=False, error=str(e))))
'''


def test_active():
    from mmengine.optim import AmpOptimWrapper
    assert cpu_amp.is_applied() and AmpOptimWrapper.__init__.__scai_compat__


def test_bfloat16_step_with_state_dict_round_trip():
    from mmengine.optim import AmpOptimWrapper
    net = nn.Linear(4, 2)
    wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD(net.parameters(), lr=0.1),
                              dtype='bfloat16', clip_grad=dict(max_norm=1.))
    before = net.weight.detach().clone()
    with wrapper.optim_context(net):
        out = net(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().pow(2).mean())
    assert not torch.equal(before, net.weight)
    wrapper.load_state_dict(wrapper.state_dict())


def test_float16_on_cpu_names_the_cause():
    from mmengine.optim import AmpOptimWrapper
    with pytest.raises(ValueError, match='bfloat16 only'):
        AmpOptimWrapper(optimizer=torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1),
                        dtype='float16')


def test_disabled_by_env(run_py):
    assert run_py(BUILD)['built'] is True
    res = run_py(BUILD, env={DISABLE_ENV: 'cpu_amp'})
    assert res['built'] is False and 'only available' in res['error']
