"""B8: MMEngine checkpoints fail to load under torch >= 2.6 (``weights_only=True``).

MMEngine 0.10.7 calls ``torch.load`` without ``weights_only``; its checkpoints hold
numpy arrays/scalars (dataset meta, message hub) and ``HistoryBuffer`` objects, which
the weights-only unpickler rejects (open-mmlab/mmengine#1655).

Fix: allow-list exactly those globals. ``weights_only=True`` stays on, so a file that
references anything else (e.g. ``os.system``) is still refused. ``getattr`` is listed
because ``HistoryBuffer`` pickles its statistics as ``getattr(HistoryBuffer, 'min')``;
the unpickler still refuses to *call* anything that is not allow-listed.
"""
from typing import List

import numpy as np
import torch

_applied = False


def safe_globals() -> List:
    """The globals an MMEngine checkpoint needs, for ``add_safe_globals``."""
    from mmengine.logging import HistoryBuffer

    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    dtype_classes = sorted({type(np.dtype(c)) for c in np.typecodes['All']},
                           key=lambda t: t.__name__)
    return [
        HistoryBuffer, getattr, multiarray._reconstruct, multiarray.scalar,
        np.ndarray, np.dtype, *dtype_classes,
        # files written under numpy 1.x name these by their old module path
        (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
        (multiarray.scalar, 'numpy.core.multiarray.scalar'),
    ]


def needed() -> bool:
    """True when torch has an allow-list (torch >= 2.4); it matters from 2.6 on."""
    return hasattr(torch.serialization, 'add_safe_globals')


def is_applied() -> bool:
    return _applied


def apply() -> bool:
    """Extend torch's weights-only allow-list if needed; return whether in effect."""
    global _applied
    if _applied:
        return True
    if not needed():
        return False
    torch.serialization.add_safe_globals(safe_globals())
    _applied = True
    return True
