"""``apply_compat``: report, idempotence and the ``SCAI_COMPAT_DISABLE`` switch."""
import pytest

from mmpose_scai.compat import DISABLE_ENV, SHIMS, apply_compat, disabled_shims

REPORT = 'import json; print(json.dumps(compat.apply_compat()))'


def test_all_shims_active_on_cpu_stack():
    # This suite runs on the pinned CPU stack, where every shim is needed.
    assert apply_compat() == {name: True for name in SHIMS}


def test_idempotent():
    import sys

    import torch
    from mmengine.model import MMDistributedDataParallel
    first_module = sys.modules['torchvision.transforms']
    first_init = MMDistributedDataParallel.__init__
    n_globals = len(torch.serialization.get_safe_globals())
    assert apply_compat() == apply_compat()
    assert sys.modules['torchvision.transforms'] is first_module
    assert MMDistributedDataParallel.__init__ is first_init
    assert len(torch.serialization.get_safe_globals()) == n_globals


@pytest.mark.parametrize('value,expected', [
    ('', set()),
    ('torchvision', {'torchvision'}),
    (' mmcv_ops , CPU_DIST ', {'mmcv_ops', 'cpu_dist'}),
    ('all', set(SHIMS)),
])
def test_disabled_shims_parsing(monkeypatch, value, expected):
    monkeypatch.setenv(DISABLE_ENV, value)
    assert disabled_shims() == expected


def test_unknown_name_warns(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, 'torchvison')
    with pytest.warns(UserWarning, match='unknown shim'):
        assert disabled_shims() == set()


def test_disable_all_in_fresh_process(run_py):
    report = run_py(REPORT, env={DISABLE_ENV: 'all'})
    assert report == {name: False for name in SHIMS}


def test_disable_one_in_fresh_process(run_py):
    report = run_py(REPORT, env={DISABLE_ENV: 'checkpoint'})
    assert report == {name: name != 'checkpoint' for name in SHIMS}
