from .hooks import SCAITTAHook

__all__ = ['SCAITTAHook']
