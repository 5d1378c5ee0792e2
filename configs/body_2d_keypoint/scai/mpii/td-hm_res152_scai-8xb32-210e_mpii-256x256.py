# SCAI on an MPII base (16 keypoints; the 'mpii' chain layout: four limb chains from
# the annotated thorax).
_base_ = [
    'mmpose::body_2d_keypoint/topdown_heatmap/mpii/td-hm_res152_8xb32-210e_mpii-256x256.py',
    '../../../_base_/scai_heatmap.py',
]
custom_imports = dict(imports=['mmpose_scai'], allow_failed_imports=False)

# The frozen base: MMPose's model-zoo checkpoint, remapped into SCAIHead.base_head.
load_from = 'https://download.openmmlab.com/mmpose/top_down/resnet/res152_mpii_256x256-3ecba29d_20200812.pth'  # noqa: E501

scai_head = dict(
    _base_.scai_head,
    metainfo=dict(from_file='configs/_base_/datasets/mpii.py'),
    chains=dict(layout='mpii'))
model = dict(
    type='SCAIPoseEstimator',
    backbone=dict(init_cfg=None),
    head=dict(
        _delete_=True,
        type='SCAIHead',
        base_head=_base_.model.head,
        **scai_head),
    train_cfg=_base_.scai_train_cfg,
    test_cfg=dict(_base_.scai_test_cfg))

optim_wrapper = dict(_delete_=True, **_base_.scai_optim_wrapper)
param_scheduler = dict(_delete_=True, **_base_.scai_param_scheduler)
default_hooks = _base_.scai_default_hooks
