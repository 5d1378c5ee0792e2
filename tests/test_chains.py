import pytest
import torch

from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose_scai.chains import KeypointChains


def names_of(dataset: str):
    meta = parse_pose_metainfo(dict(from_file=f'configs/_base_/datasets/{dataset}.py'))
    return [meta['keypoint_id2name'][i] for i in range(meta['num_keypoints'])]


COCO = names_of('coco')


def chain_names(chains: KeypointChains):
    names = chains.keypoint_names + chains.virtual_names
    return {n: tuple(names[i] for i in idx) for n, idx in zip(chains.names, chains.index.tolist())}


def test_coco_layout_has_six_chains_from_a_synthetic_neck():
    chains = KeypointChains(COCO, layout='coco')
    assert chains.num_chains == 6 and chains.virtual_names == ['neck']
    assert chains.index[:, 0].eq(17).all()  # A is the appended neck slot
    assert chain_names(chains)['left_leg'] == ('neck', 'left_hip', 'left_knee', 'left_ankle')
    assert chain_names(chains)['right_head'] == ('neck', 'nose', 'right_eye', 'right_ear')
    assert chains.virtual_pairs.tolist() == [[COCO.index('left_shoulder'),
                                               COCO.index('right_shoulder')]]


def test_crowdpose_uses_its_real_neck():
    names = names_of('crowdpose')
    chains = KeypointChains(names, layout='crowdpose')
    assert chains.num_chains == 4 and chains.virtual_names == []
    assert chains.index[:, 0].eq(names.index('neck')).all()
    assert chain_names(chains)['right_arm'][3] == 'right_wrist'


def test_mpii_uses_thorax_for_all_limbs():
    names = names_of('mpii')
    chains = KeypointChains(names, layout='mpii')
    assert chains.num_chains == 4
    assert chains.index[:, 0].eq(names.index('thorax')).all()
    # ids differ from COCO: resolution is by name
    assert chain_names(chains)['left_leg'][3] == 'left_ankle'
    assert chains.index[2, 3].item() == names.index('left_ankle') != COCO.index('left_ankle')


def test_user_defined_chains_and_virtual_keypoints():
    chains = KeypointChains(
        COCO, chains=dict(hips=('pelvis', 'left_hip', 'left_knee', 'left_ankle')),
        virtual=dict(pelvis=('left_hip', 'right_hip')))
    assert chains.names == ['hips'] and chains.virtual_names == ['pelvis']


@pytest.mark.parametrize('kwargs, match', [
    (dict(layout='coco', chains={}), 'no chains'),
    (dict(layout='nope'), 'Unknown chain layout'),
    (dict(chains=dict(arm=('neck', 'left_shoulder', 'left_elbow', 'left_hand')),
          virtual=dict(neck=('left_shoulder', 'right_shoulder'))), "left_hand"),
    (dict(chains=dict(arm=('left_shoulder', 'left_elbow', 'left_wrist'))), 'four keypoints'),
    (dict(layout='coco', disabled=('tail', )), 'tail'),
    (dict(chains=dict(arm=('left_shoulder', 'left_elbow', 'left_wrist', 'neck')),
          virtual=dict(neck=('left_shoulder', 'right_shoulder'))), 'only slot A'),
])
def test_bad_layouts_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KeypointChains(COCO, **kwargs)


def test_coco_layout_on_a_dataset_without_shoulders_names_the_gap():
    with pytest.raises(ValueError, match='left_shoulder'):
        KeypointChains(names_of('mpii'), layout='coco')


def test_gather_and_scatter_mean_average_shared_keypoints():
    chains = KeypointChains(COCO, layout='coco')
    values = torch.arange(18.).reshape(1, 18)  # K + V slots
    slots = chains.gather(values, 'ABCD')
    assert slots.shape == (1, 6, 4)
    assert slots[0, 0].tolist() == [17., 5., 7., 9.]
    assert chains.gather(values, 'D')[0].tolist() == [9., 10., 15., 16., 3., 4.]

    base = torch.zeros(1, 17)
    new_b = torch.tensor([[0., 0., 0., 0., 2., 4.]])  # the nose is B of both head chains
    mask = torch.ones(1, 6, dtype=torch.bool)
    out = chains.scatter_mean(base, new_b, 'B', mask)
    assert out[0, COCO.index('nose')] == 3.  # mean of both head chains
    mask[0, 5] = False
    out = chains.scatter_mean(base, new_b, 'B', mask)
    assert out[0, COCO.index('nose')] == 2.  # only the updated chain counts
    assert out[0, COCO.index('left_shoulder')] == 0.


def test_per_keypoint_errors_nan_outside_chains():
    chains = KeypointChains(COCO, layout='coco')
    err = torch.tensor([[1., 2., 3., 4., 5., 7.]])
    valid = torch.ones(1, 6, dtype=torch.bool)
    kpt = chains.per_keypoint(err, valid)[0]
    assert kpt[COCO.index('nose')] == 6.  # mean of both head chains
    assert kpt[COCO.index('left_wrist')] == 1. and kpt[COCO.index('right_ankle')] == 4.
    legs_only = KeypointChains(COCO, chains=dict(
        leg=('left_hip', 'left_knee', 'left_ankle', 'left_shoulder')))
    kpt = legs_only.per_keypoint(torch.ones(1, 1), torch.ones(1, 1, dtype=torch.bool))[0]
    assert torch.isnan(kpt[COCO.index('nose')]) and kpt[COCO.index('left_ankle')] == 1.
    assert torch.isnan(legs_only.per_keypoint(torch.ones(1, 1), torch.zeros(1, 1, dtype=torch.bool))).all()
