"""Utilities of the plugin."""
from .config_scope import register_config_scope
from .setup_env import register_all_modules

__all__ = ['register_all_modules', 'register_config_scope']
