"""Utilities of the plugin."""
from .config_scope import register_config_scope
from .setup_env import register_all_modules
from .weights import (BLAZEPOSE_SHA256, REFINER_KEYS, blazepose_checkpoint,
                      blazepose_checkpoint_path, cache_dir, save_checkpoint,
                      scai_checkpoint)

__all__ = [
    'BLAZEPOSE_SHA256', 'REFINER_KEYS', 'blazepose_checkpoint',
    'blazepose_checkpoint_path', 'cache_dir', 'register_all_modules',
    'register_config_scope', 'save_checkpoint', 'scai_checkpoint'
]
