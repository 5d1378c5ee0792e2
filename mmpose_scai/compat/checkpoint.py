"""B8: MMEngine checkpoints fail to load under torch >= 2.6 (``weights_only=True``).

MMEngine 0.10.7 calls ``torch.load`` without ``weights_only``; its checkpoints hold
numpy arrays/scalars (dataset meta, message hub) and ``HistoryBuffer`` objects, which
the weights-only unpickler rejects (open-mmlab/mmengine#1655).

Fix: allow-list exactly those globals. ``weights_only=True`` stays on, so a file that
references anything else (e.g. ``os.system``) is still refused. ``getattr`` is listed
because ``HistoryBuffer`` pickles its statistics as ``getattr(HistoryBuffer, 'min')``;
the unpickler still refuses to *call* anything that is not allow-listed.

A file that is no checkpoint at all (garbage, HTML error page, truncated download) makes
the weights-only unpickler fail with whatever it trips on (``IndexError: pop from empty
list``, ``KeyError``, ``UnicodeDecodeError``...). MMEngine's loader of local files is
wrapped so such a failure names the file and what to check; a refused global keeps
torch's own message (it already says what to do).
"""
import functools
import os.path as osp
import pickle
from typing import List, Optional

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


class CheckpointReadError(RuntimeError):
    """A local file that ``torch.load`` cannot read as a checkpoint."""


def _explain_local_loader() -> None:
    """Re-register MMEngine's local-file loader with a clear error for non-checkpoints."""
    from mmengine.runner.checkpoint import CheckpointLoader

    load_from_local = CheckpointLoader._schemes['']
    if getattr(load_from_local, '__scai_compat__', False):
        return

    @functools.wraps(load_from_local)
    def _load_from_local(filename: str, map_location: Optional[str] = None):
        try:
            return load_from_local(filename, map_location)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except pickle.UnpicklingError as e:
            if 'unsupported global' in str(e).lower():
                raise  # a real checkpoint with a refused global: torch's message says why
            raise _read_error(filename, e) from e
        except (IndexError, KeyError, ValueError, EOFError, UnicodeDecodeError,
                RuntimeError) as e:
            raise _read_error(filename, e) from e

    _load_from_local.__scai_compat__ = True
    CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local, force=True)


def _read_error(filename: str, error: Exception) -> CheckpointReadError:
    size = osp.getsize(filename) if osp.isfile(filename) else 0
    return CheckpointReadError(
        f'{filename} ({size} bytes) is not a checkpoint torch.load can read '
        f'({type(error).__name__}: {error}). Expected a file written by torch.save, e.g. '
        'by an MMEngine Runner or from the MMPose model zoo; check the path, and '
        'download the file again if it may be truncated or an error page.')


def apply() -> bool:
    """Extend torch's weights-only allow-list if needed; return whether in effect.

    MMEngine's local loader is wrapped (clear error for a non-checkpoint) either way.
    """
    global _applied
    _explain_local_loader()
    if _applied:
        return True
    if not needed():
        return False
    torch.serialization.add_safe_globals(safe_globals())
    _applied = True
    return True
