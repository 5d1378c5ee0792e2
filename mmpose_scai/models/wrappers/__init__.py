from .scai_distributed import SCAIDistributedDataParallel

__all__ = ['SCAIDistributedDataParallel']
