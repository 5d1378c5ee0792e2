from .scai_head import SCAIHead

__all__ = ['SCAIHead']
