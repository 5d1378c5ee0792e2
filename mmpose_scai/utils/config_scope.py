"""The ``mmpose_scai::`` config scope, the plugin's counterpart of ``mmpose::``.

MMEngine resolves ``<scope>::<path>`` only for the scopes listed in its
``MODULE2PACKAGE`` table, as ``<package dir>/.mim/configs/<path>`` (after it looked the
path up in ``<package dir>/.mim/model-index.yml``). The package ships ``.mim/configs``
and ``.mim/model-index.yml`` (links to the repository's ``configs/`` and
``model-index.yml``, copied into wheels); :func:`register_config_scope` adds the table
entry.

The entry names the submodule ``mmpose_scai.version`` rather than the distribution:
MMEngine then takes the package directory from the import system (``find_spec``), which
is right for wheels, ``--target`` folders, ``PYTHONPATH`` and PEP 660 editable installs
alike; through the distribution, it would look for ``site-packages/mmpose_scai`` even
when an editable install keeps the package in the source tree.
"""
SCOPE = 'mmpose_scai'
_LOCATOR = 'mmpose_scai.version'


def register_config_scope() -> None:
    """Let ``Config.fromfile`` resolve ``mmpose_scai::<path>`` (idempotent)."""
    from mmengine.config import utils

    utils.MODULE2PACKAGE.setdefault(SCOPE, _LOCATOR)
