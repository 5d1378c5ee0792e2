"""Environment shims that let MMPose 1.x run on a current CPU-only stack.

Each submodule fixes one breakage of the environment notes (B2, B7, B8, B9, B11, B12,
B16). A shim is applied only when its guard says the environment needs it, is inert on
a full stack (real torchvision / compiled mmcv / CUDA; ``inferencer`` fixes MMPose bugs
and stays in effect), is idempotent and can be switched off with the environment
variable ``SCAI_COMPAT_DISABLE``: a comma-separated list of shim names (``torchvision``,
``mmcv_ops``, ``checkpoint``, ``cpu_dist``, ``visualizer``, ``inferencer``,
``cpu_amp``) or ``all``.

:func:`apply_compat` must run before ``mmpose.models``, ``mmpose.apis`` or
``mmpose.visualization`` is imported; ``import mmpose_scai`` does this first.
"""
import os
import warnings
from typing import Dict, Set

from . import (checkpoint, cpu_amp, cpu_dist, inferencer, mmcv_ops_stub,
               torchvision_stub, visualizer)

DISABLE_ENV = 'SCAI_COMPAT_DISABLE'

# The last two import mmpose.visualization / mmpose.apis, so they come after the shims
# that make those imports work (torchvision, mmcv_ops).
SHIMS = {
    'torchvision': torchvision_stub,  # B2
    'mmcv_ops': mmcv_ops_stub,  # B7
    'checkpoint': checkpoint,  # B8
    'cpu_dist': cpu_dist,  # B9
    'visualizer': visualizer,  # B11
    'inferencer': inferencer,  # B12
    'cpu_amp': cpu_amp,  # B16
}


def disabled_shims() -> Set[str]:
    """Names of the shims switched off through ``SCAI_COMPAT_DISABLE``."""
    raw = os.environ.get(DISABLE_ENV, '')
    names = {n.strip().lower() for n in raw.split(',') if n.strip()}
    if 'all' in names:
        return set(SHIMS)
    unknown = names - set(SHIMS)
    if unknown:
        warnings.warn(f'{DISABLE_ENV}: unknown shim name(s) {sorted(unknown)}; '
                      f'known: {sorted(SHIMS)} or "all"')
    return names & set(SHIMS)


def apply_compat() -> Dict[str, bool]:
    """Apply every needed, enabled shim.

    Returns:
        dict: shim name -> whether the shim is in effect in this process.
    """
    off = disabled_shims()
    return {name: (name not in off and shim.apply()) for name, shim in SHIMS.items()}


__all__ = ['apply_compat', 'disabled_shims', 'DISABLE_ENV', 'SHIMS']
