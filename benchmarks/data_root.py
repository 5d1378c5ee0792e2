"""Where the real data lives: ``SCAI_DATA_ROOT``, ``../shared/data`` or the demo subset.

The benchmark, the demo and the tests resolve it here and export ``$SCAI_DATA_ROOT``;
the configs read that variable (``'{{$SCAI_DATA_ROOT:data/demo}}/lspet/'``).
"""
import os
import os.path as osp
from typing import Optional

DATA_ROOT_ENV = 'SCAI_DATA_ROOT'
# Relative to the repository root (the directory that holds the package).
SHARED_DATA = osp.join('..', 'shared', 'data')
DEMO_DATA = osp.join('data', 'demo')


class DataRootError(FileNotFoundError):
    """No usable data root was found."""


def repo_root() -> str:
    """The repository root (the directory holding ``benchmarks/``)."""
    return osp.dirname(osp.dirname(osp.abspath(__file__)))


def is_ci() -> bool:
    """Whether we run under CI (``CI=true``), where missing data must fail."""
    return os.environ.get('CI', '').strip().lower() in ('1', 'true', 'yes')


def resolve_data_root(allow_demo: bool = True, root: Optional[str] = None) -> str:
    """Return the absolute path of the data root.

    Order: ``$SCAI_DATA_ROOT`` (must exist); ``<repo>/../shared/data``; the embedded
    demo subset ``<repo>/data/demo`` (if ``allow_demo``).

    Args:
        allow_demo: Fall back to the small demo subset embedded in the repository.
        root: Repository root to resolve from; defaults to :func:`repo_root`.

    Raises:
        DataRootError: If ``$SCAI_DATA_ROOT`` names a missing directory, or no
            candidate exists.
    """
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        path = osp.abspath(osp.expanduser(env))
        if not osp.isdir(path):
            raise DataRootError(f'{DATA_ROOT_ENV}={env!r} is not a directory.')
        return path
    root = root or repo_root()
    candidates = [SHARED_DATA] + ([DEMO_DATA] if allow_demo else [])
    for rel in candidates:
        path = osp.normpath(osp.join(root, rel))
        if osp.isdir(path):
            return path
    tried = ', '.join(osp.normpath(osp.join(root, rel)) for rel in candidates)
    raise DataRootError(f'No data root found (tried {tried}). Set {DATA_ROOT_ENV} to the '
                        'folder holding coco_sample/ and lspet/.')


def is_demo_root(path: str, root: Optional[str] = None) -> bool:
    """Whether ``path`` is the embedded demo subset."""
    demo = osp.normpath(osp.join(root or repo_root(), DEMO_DATA))
    return osp.normpath(osp.abspath(path)) == demo


def export_data_root() -> None:
    """Set ``$SCAI_DATA_ROOT`` (read by the configs) to :func:`resolve_data_root` unless
    it is set; under CI only to the shared data (a fallback to the demo subset fails
    there, in the tests' ``data_root`` fixture)."""
    if not os.environ.get(DATA_ROOT_ENV):
        try:
            os.environ[DATA_ROOT_ENV] = resolve_data_root(allow_demo=not is_ci())
        except DataRootError:
            pass
