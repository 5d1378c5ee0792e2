"""B2: ``torchvision`` is absent, but ``mmpose.visualization`` imports it.

``mmpose/visualization/simcc_vis.py`` does ``from torchvision.transforms import
ToPILImage`` at import time, which breaks ``mmpose.visualization``, ``mmpose.apis``
and every Runner. No upstream issue found.

Only ``torchvision.transforms`` is registered (with a minimal ``ToPILImage``), so
``import torchvision`` keeps failing and code probing for torchvision is unaffected.
"""
import importlib.util
import sys

import numpy as np
import torch
from PIL import Image

from .placeholder import apply_placeholder, is_placeholder

MODULE = 'torchvision.transforms'


class ToPILImage:
    """Tensor (``HW`` or ``CHW``; float in [0, 1] or integer) to ``PIL.Image``."""

    def __init__(self, mode=None) -> None:
        self.mode = mode

    def __call__(self, pic: torch.Tensor) -> Image.Image:
        if pic.ndim == 2:
            pic = pic.unsqueeze(0)
        if pic.is_floating_point():
            pic = pic.mul(255).byte()
        arr = np.ascontiguousarray(pic.detach().cpu().numpy().transpose(1, 2, 0))
        if arr.shape[2] == 1:
            arr = arr[..., 0]
        return Image.fromarray(arr, mode=self.mode) if self.mode else Image.fromarray(arr)


def needed() -> bool:
    """True when torchvision is not installed and nothing provides the module yet."""
    return importlib.util.find_spec('torchvision') is None and MODULE not in sys.modules


def is_applied() -> bool:
    return is_placeholder(MODULE)


def apply() -> bool:
    """Register the placeholder module if needed; return whether it is in effect."""
    return apply_placeholder(MODULE, needed, 'Placeholder of mmpose_scai.compat (B2).',
                             ToPILImage=ToPILImage)
