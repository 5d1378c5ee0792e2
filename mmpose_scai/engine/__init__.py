from .hooks import SCAITTAHook
from .optim_wrappers import SCAIOptimWrapperConstructor

__all__ = ['SCAITTAHook', 'SCAIOptimWrapperConstructor']
