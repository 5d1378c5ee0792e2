"""mmpose-scai: self-correctable and adaptable inference (SCAI) for MMPose.

Importing this package first applies the environment shims of :mod:`mmpose_scai.compat`
(they must run before ``mmpose.models`` is imported), then registers every module of the
plugin into MMPose's registries. It also registers the ``mmpose_scai::`` config scope
(:mod:`mmpose_scai.utils.config_scope`).
"""
from .compat import apply_compat
from .utils import register_config_scope

apply_compat()
register_config_scope()

from . import datasets, engine, models  # noqa: E402,F401  (register SCAI modules)
from .chains import KeypointChains  # noqa: E402
from .version import __version__  # noqa: E402

__all__ = ['__version__', 'apply_compat', 'KeypointChains']
