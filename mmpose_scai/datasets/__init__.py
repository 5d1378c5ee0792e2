from .holdout import HoldoutCocoDataset, holdout_image_ids

__all__ = ['HoldoutCocoDataset', 'holdout_image_ids']
