from .adapter import PRESETS, TestTimeAdapter

__all__ = ['PRESETS', 'TestTimeAdapter']
