"""``python -m mmpose_scai train|test <config> [args]``: MMPose's ``tools/train.py`` or
``tools/test.py`` with the plugin imported first.

MMEngine resolves the ``mmpose_scai::`` config scope once the plugin is imported, and
``mim train mmpose`` / MMPose's tools read the config before any ``custom_imports``;
this entry point imports the plugin, then runs MMPose's tool (the one installed with
MMPose, under ``mmpose/.mim/tools``) with the remaining arguments, unchanged.
"""
import os.path as osp
import runpy
import sys
from typing import List, Optional

TOOLS = ('train', 'test')


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in TOOLS:
        sys.exit(f'usage: python -m mmpose_scai {{{",".join(TOOLS)}}} <config> [args of '
                 "MMPose's tools/train.py or tools/test.py]")
    import mmpose

    import mmpose_scai  # noqa: F401  (shims, modules, the mmpose_scai:: scope)
    script = osp.join(osp.dirname(mmpose.__file__), '.mim', 'tools', f'{argv[0]}.py')
    if not osp.isfile(script):
        sys.exit(f'{script} not found: this MMPose installation has no tools '
                 '(install mmpose from PyPI, or with `pip install -e` from its '
                 'repository)')
    sys.argv = [script] + argv[1:]
    runpy.run_path(script, run_name='__main__')


if __name__ == '__main__':
    main()
