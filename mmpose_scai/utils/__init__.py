"""Utilities of the plugin."""
from .weights import (BLAZEPOSE_SHA256, WeightsError, blazepose_checkpoint,
                      blazepose_checkpoint_path, cache_dir, fetch_blazepose)

__all__ = [
    'BLAZEPOSE_SHA256', 'WeightsError', 'blazepose_checkpoint', 'blazepose_checkpoint_path',
    'cache_dir', 'fetch_blazepose'
]
