from .data_root import (DATA_ROOT_ENV, DataRootError, is_ci, is_demo_root, repo_root,
                        resolve_data_root)
from .weights import (BLAZEPOSE_SHA256, WeightsError, blazepose_checkpoint,
                      blazepose_checkpoint_path, cache_dir, fetch_blazepose)

__all__ = [
    'DATA_ROOT_ENV', 'DataRootError', 'is_ci', 'is_demo_root', 'repo_root',
    'resolve_data_root', 'BLAZEPOSE_SHA256', 'WeightsError', 'blazepose_checkpoint',
    'blazepose_checkpoint_path', 'cache_dir', 'fetch_blazepose'
]
