from .scai_tta_hook import SCAITTAHook

__all__ = ['SCAITTAHook']
