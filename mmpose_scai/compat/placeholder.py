"""Placeholder modules: registered in ``sys.modules`` and marked as the plugin's."""
import sys
import types
from typing import Callable

MARK = '__scai_compat__'


def is_placeholder(name: str) -> bool:
    """Whether the module ``name`` is a placeholder registered here."""
    return getattr(sys.modules.get(name), MARK, False)


def register_placeholder(name: str, doc: str, **attrs) -> types.ModuleType:
    """Register a module ``name`` defining only ``attrs``."""
    module = types.ModuleType(name, doc)
    for key, value in attrs.items():
        setattr(module, key, value)
    setattr(module, MARK, True)
    sys.modules[name] = module
    return module


def apply_placeholder(name: str, needed: Callable[[], bool], doc: str, **attrs) -> bool:
    """Register the placeholder ``name`` if ``needed()``; whether it is in effect."""
    if is_placeholder(name):
        return True
    if not needed():
        return False
    register_placeholder(name, doc, **attrs)
    return True
