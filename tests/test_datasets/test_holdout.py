"""The seeded validation split of LSPET-train, on the real annotation files."""
import os.path as osp

import pytest
from mmengine.logging import MessageHub

from mmpose_scai.datasets.holdout import HoldoutCocoDataset, holdout_image_ids


def test_holdout_ids_are_seeded_and_sized():
    ids = list(range(100, 0, -1))
    a = holdout_image_ids(ids, size=10, seed=0)
    assert a == holdout_image_ids(sorted(ids), size=10, seed=0)
    assert a != holdout_image_ids(ids, size=10, seed=1)
    assert len(a) == 10 and set(a) <= set(ids)
    with pytest.raises(ValueError, match='holdout size'):
        holdout_image_ids(ids, size=100)


def _dataset(data_root: str, part: str, size: int, **kw) -> HoldoutCocoDataset:
    # the test file stands in for train.json where only the demo subset is present
    ann = 'train.json' if osp.exists(osp.join(data_root, 'lspet/annotations/train.json')) \
        else 'test.json'
    return HoldoutCocoDataset(part=part, holdout_size=size,
                              data_root=osp.join(data_root, 'lspet'),
                              ann_file=f'annotations/{ann}',
                              data_prefix=dict(img='images/'), pipeline=[], **kw)


def test_parts_partition_the_file(data_root):
    size = 5
    train = _dataset(data_root, 'train', size)
    held = _dataset(data_root, 'holdout', size)
    train_ids = {train.get_data_info(i)['img_id'] for i in range(len(train))}
    held_ids = {held.get_data_info(i)['img_id'] for i in range(len(held))}
    assert len(held_ids) == size and not train_ids & held_ids
    with pytest.raises(ValueError, match='part must be'):
        _dataset(data_root, 'val', size)


def test_holdout_is_scored_against_its_own_annotations(data_root):
    """CocoMetric reads ``<dataset>_ann_file`` from the MessageHub: for the holdout part
    it must be unset, or the metric would score 500 images against the whole file."""
    hub = MessageHub.get_current_instance()
    held = _dataset(data_root, 'holdout', 5, test_mode=True)
    assert hub.get_info(f'{held.metainfo["dataset_name"]}_ann_file', 'unset') is None
    train = _dataset(data_root, 'train', 5, test_mode=True)
    assert hub.get_info(f'{train.metainfo["dataset_name"]}_ann_file') == train.ann_file
