# SCAI on a CrowdPose base (14 keypoints; the 'crowdpose' chain layout: four limb
# chains from the annotated neck).
_base_ = [
    'mmpose::body_2d_keypoint/topdown_heatmap/crowdpose/td-hm_res152_8xb64-210e_crowdpose-256x192.py',
    '../../../_base_/scai_heatmap.py',
]
custom_imports = dict(imports=['mmpose_scai'], allow_failed_imports=False)

# The frozen base: MMPose's model-zoo checkpoint, remapped into SCAIHead.base_head.
load_from = 'https://download.openmmlab.com/mmpose/top_down/resnet/res152_crowdpose_256x192-dbd49aba_20201227.pth'  # noqa: E501

scai_head = dict(
    _base_.scai_head,
    metainfo=dict(from_file='configs/_base_/datasets/crowdpose.py'),
    chains=dict(layout='crowdpose'))
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
