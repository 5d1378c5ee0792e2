"""B7: ``mmcv.ops`` is missing in mmcv-lite (no compiled ``mmcv._ext``).

``mmpose.models`` imports ``from mmcv.ops import MultiScaleDeformableAttention``
unguarded (EDPose head, deformable DETR layers), so ``import mmpose.models`` fails
with ``No module named 'mmcv._ext'`` (open-mmlab/mmpose#3250, #3014).

A placeholder *module* defines only that name; it raises on construction. Every other
``mmcv.ops`` name still raises ``ImportError``, so the guarded imports in mmpose keep
reporting "no full mmcv".
"""
import importlib.util
import sys

import torch.nn as nn

from .placeholder import apply_placeholder, is_placeholder

MODULE = 'mmcv.ops'


class MultiScaleDeformableAttention(nn.Module):
    """Placeholder for the compiled op of full mmcv."""

    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError(
            'MultiScaleDeformableAttention needs full mmcv with compiled ops '
            '(mmcv._ext); this environment has mmcv-lite. Models using it (EDPose) '
            'are unavailable here.')


def needed() -> bool:
    """True when mmcv is installed without its compiled extension."""
    if MODULE in sys.modules or importlib.util.find_spec('mmcv') is None:
        return False
    return importlib.util.find_spec('mmcv._ext') is None


def is_applied() -> bool:
    return is_placeholder(MODULE)


def apply() -> bool:
    """Register the placeholder module if needed; return whether it is in effect."""
    if not apply_placeholder(MODULE, needed, 'Placeholder of mmpose_scai.compat (B7).',
                             MultiScaleDeformableAttention=MultiScaleDeformableAttention):
        return False
    import mmcv
    mmcv.ops = sys.modules[MODULE]
    return True
