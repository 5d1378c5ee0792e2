from .scai_optim_wrapper_constructor import NETWORKS, SCAIOptimWrapperConstructor

__all__ = ['NETWORKS', 'SCAIOptimWrapperConstructor']
