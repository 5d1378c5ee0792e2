"""B9: ``--launcher pytorch`` on a host without CUDA (gloo, no set_device, CPU DDP)."""
import socket

from mmpose_scai.compat import DISABLE_ENV, cpu_dist

# One rank is enough to go through MMEngine's init and DDP wrapping.
DIST = '''
import json, torch, torch.nn as nn
compat.apply_compat()
from mmengine.dist import init_dist
from mmengine.model import MMDistributedDataParallel
res = {}
try:
    init_dist('pytorch', backend='nccl')  # mmpose's default runtime
    res['backend'] = torch.distributed.get_backend()
    ddp = MMDistributedDataParallel(nn.Linear(2, 2), device_ids=[0])
    res['out'] = list(ddp(torch.ones(1, 2)).shape)
    torch.distributed.destroy_process_group()
except Exception as e:
    res['error'] = type(e).__name__
print(json.dumps(res))
'''


def _dist_env() -> dict:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    return dict(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK='0', LOCAL_RANK='0',
                WORLD_SIZE='1')


def test_active():
    import mmengine.dist.utils as dist_utils
    assert cpu_dist.is_applied()
    assert dist_utils._init_dist_pytorch.__scai_compat__


def test_init_dist_and_ddp_on_cpu(run_py):
    assert run_py(DIST, env=_dist_env()) == {'backend': 'gloo', 'out': [1, 2]}


def test_disabled_by_env(run_py):
    res = run_py(DIST, env={**_dist_env(), DISABLE_ENV: 'cpu_dist'})
    assert 'error' in res and 'backend' not in res


def test_inert_with_cuda(run_py):
    code = '''
import json, torch
torch.cuda.is_available = lambda: True
import mmengine.dist.utils as dist_utils
original = dist_utils._init_dist_pytorch
print(json.dumps(dict(report=compat.apply_compat()['cpu_dist'],
                      untouched=dist_utils._init_dist_pytorch is original)))
'''
    assert run_py(code) == {'report': False, 'untouched': True}
