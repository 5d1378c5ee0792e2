"""B9: ``--launcher pytorch`` on a host without CUDA.

MMEngine's ``_init_dist_pytorch`` calls ``torch.cuda.set_device`` unconditionally and
passes the config's backend (MMPose's default runtime: ``nccl``) as is; then
``Runner.wrap_model`` gives DDP ``device_ids=[LOCAL_RANK]``, which DDP rejects for a
CPU module. No upstream issue found.

Fix, only when CUDA is unavailable: initialise the process group without
``set_device`` and with ``gloo`` in place of ``nccl``; drop ``device_ids`` and
``output_device`` when a module to wrap lives entirely on the CPU.
"""
import functools

import torch

_MARK = '__scai_compat__'


def needed() -> bool:
    """True when CUDA is unavailable (also for a CUDA build on a GPU-less host)."""
    return not torch.cuda.is_available()


def _other_accelerator() -> bool:
    from mmengine.device import (is_mlu_available, is_musa_available,
                                 is_npu_available)
    return is_mlu_available() or is_npu_available() or is_musa_available()


def _patch_init_dist() -> None:
    import mmengine.dist.utils as dist_utils
    original = dist_utils._init_dist_pytorch

    @functools.wraps(original)
    def _init_dist_pytorch(backend: str, init_backend: str = 'torch', **kwargs) -> None:
        if init_backend != 'torch' or _other_accelerator():
            return original(backend, init_backend=init_backend, **kwargs)
        torch.distributed.init_process_group(
            backend='gloo' if backend == 'nccl' else backend, **kwargs)

    setattr(_init_dist_pytorch, _MARK, True)
    # ``init_dist`` looks this name up in the module at call time.
    dist_utils._init_dist_pytorch = _init_dist_pytorch


def _patch_ddp() -> None:
    from mmengine.model import MMDistributedDataParallel
    original = MMDistributedDataParallel.__init__

    @functools.wraps(original)
    def __init__(self, module, detect_anomalous_params: bool = False, **kwargs) -> None:
        if all(p.device.type == 'cpu' for p in module.parameters()):
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        original(self, module, detect_anomalous_params=detect_anomalous_params, **kwargs)

    setattr(__init__, _MARK, True)
    MMDistributedDataParallel.__init__ = __init__


def is_applied() -> bool:
    import mmengine.dist.utils as dist_utils
    return getattr(dist_utils._init_dist_pytorch, _MARK, False)


def apply() -> bool:
    """Patch MMEngine's distributed init and DDP wrapper if needed."""
    if is_applied():
        return True
    if not needed():
        return False
    _patch_init_dist()
    _patch_ddp()
    return True
