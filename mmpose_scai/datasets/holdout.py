"""A fixed validation split carved out of a COCO-style training file.

Every tuning choice of SCAI is made on 500 images of LSPET-train drawn with
``numpy.random.default_rng(0)``, never on LSPET-test; this dataset gives either part.
"""
from typing import List, Sequence

import numpy as np
from mmengine.logging import MessageHub

from mmpose.datasets import CocoDataset
from mmpose.registry import DATASETS


def holdout_image_ids(image_ids: Sequence[int], size: int = 500, seed: int = 0
                      ) -> List[int]:
    """The held-out image ids: ``size`` of the sorted ids, permuted with ``seed``."""
    ids = np.array(sorted(set(image_ids)))
    if not 0 < size < len(ids):
        raise ValueError(f'holdout size must be in (0, {len(ids)}), got {size}')
    return sorted(ids[np.random.default_rng(seed).permutation(len(ids))[:size]].tolist())


@DATASETS.register_module()
class HoldoutCocoDataset(CocoDataset):
    """:class:`CocoDataset` restricted to one part of a seeded holdout split.

    Args:
        part (str): ``'train'`` (all images but the holdout) or ``'holdout'``.
        holdout_size (int): Number of held-out images. Defaults to 500.
        holdout_seed (int): Seed of ``numpy.random.default_rng``. Defaults to 0.
        **kwargs: :class:`CocoDataset` arguments.
    """

    def __init__(self, part: str = 'train', holdout_size: int = 500,
                 holdout_seed: int = 0, **kwargs) -> None:
        if part not in ('train', 'holdout'):
            raise ValueError(f'part must be "train" or "holdout", got {part!r}')
        self.part, self.holdout_size, self.holdout_seed = part, holdout_size, holdout_seed
        super().__init__(**kwargs)
        if self.test_mode and part == 'holdout':
            # CocoDataset hands its whole ann_file to CocoMetric, which would count every
            # training image as a missed person; None makes CocoMetric build the ground
            # truth from the held-out samples themselves.
            MessageHub.get_current_instance().update_info_dict(
                {f'{self.metainfo["dataset_name"]}_ann_file': None})

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        held = set(holdout_image_ids([d['img_id'] for d in data_list], self.holdout_size,
                                     self.holdout_seed))
        keep = self.part == 'holdout'
        return [d for d in data_list if (d['img_id'] in held) == keep]
