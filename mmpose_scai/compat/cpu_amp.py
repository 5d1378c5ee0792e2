"""B16: ``--amp`` (``AmpOptimWrapper``) on a host without CUDA.

MMEngine's ``AmpOptimWrapper.__init__`` asserts that CUDA (or NPU/MLU/MUSA) is
available, although its ``optim_context`` autocasts on the CPU as well (bfloat16 only,
the one dtype of torch's CPU autocast). No upstream issue found.

Fix, only when no accelerator is available: build the wrapper without the assert,
autocasting to bfloat16 and with a disabled loss scaler (bfloat16 has float32's
exponent range, so it needs no loss scaling). Any other ``dtype`` raises, naming the
cause.
"""
import functools

import torch

_MARK = '__scai_compat__'


def needed() -> bool:
    """True when CUDA is unavailable (also for a CUDA build on a GPU-less host)."""
    return not torch.cuda.is_available()


def _patch_amp() -> None:
    from mmengine.optim import AmpOptimWrapper, OptimWrapper

    from .cpu_dist import _other_accelerator
    original = AmpOptimWrapper.__init__

    @functools.wraps(original)
    def __init__(self, loss_scale='dynamic', dtype=None, use_fsdp: bool = False,
                 **kwargs) -> None:
        if _other_accelerator():
            return original(self, loss_scale=loss_scale, dtype=dtype,
                            use_fsdp=use_fsdp, **kwargs)
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, dtype)
        if dtype not in (None, torch.bfloat16):
            raise ValueError('AmpOptimWrapper on the CPU autocasts to bfloat16 only '
                             f'(torch CPU autocast); got dtype={dtype}. Set '
                             "optim_wrapper.dtype='bfloat16' or train on a GPU.")
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        self.loss_scaler = torch.amp.GradScaler('cpu', enabled=False)
        self.cast_dtype = torch.bfloat16

    setattr(__init__, _MARK, True)
    AmpOptimWrapper.__init__ = __init__


def is_applied() -> bool:
    from mmengine.optim import AmpOptimWrapper
    return getattr(AmpOptimWrapper.__init__, _MARK, False)


def apply() -> bool:
    """Patch MMEngine's ``AmpOptimWrapper`` if needed."""
    if is_applied():
        return True
    if not needed():
        return False
    _patch_amp()
    return True
