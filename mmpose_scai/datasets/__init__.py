from . import transforms  # noqa: F401  (registers the shift transforms)
from .holdout import HoldoutCocoDataset, holdout_image_ids

__all__ = ['HoldoutCocoDataset', 'holdout_image_ids']
