from .data_root import (DATA_ROOT_ENV, DataRootError, is_ci, is_demo_root, repo_root,
                        resolve_data_root)

__all__ = [
    'DATA_ROOT_ENV', 'DataRootError', 'is_ci', 'is_demo_root', 'repo_root',
    'resolve_data_root'
]
