"""mmpose-scai: self-correctable and adaptable inference (SCAI) for MMPose.

Importing this package first applies the environment shims of :mod:`mmpose_scai.compat`
(they must run before ``mmpose.models`` is imported), then registers every module of the
plugin into MMPose's registries.
"""
from .compat import apply_compat

apply_compat()

from . import datasets, engine, models  # noqa: E402,F401  (register SCAI modules)
from .chains import KeypointChains  # noqa: E402
from .version import __version__  # noqa: E402

__all__ = ['__version__', 'apply_compat', 'KeypointChains']
