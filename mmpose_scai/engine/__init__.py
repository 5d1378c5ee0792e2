from .hooks import SCAITrainCheckHook, SCAITTAHook
from .optim_wrappers import SCAIOptimWrapperConstructor

__all__ = ['SCAITrainCheckHook', 'SCAITTAHook', 'SCAIOptimWrapperConstructor']
