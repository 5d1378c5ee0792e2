_base_ = [
    'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res152_8xb32-210e_coco-384x288.py',
    '../../../_base_/scai_heatmap.py',
]
custom_imports = dict(imports=['mmpose_scai'], allow_failed_imports=False)

# The frozen base: MMPose's model-zoo checkpoint, remapped into SCAIHead.base_head.
load_from = 'https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/topdown_heatmap/coco/td-hm_res152_8xb32-210e_coco-384x288-7fbb906f_20220927.pth'  # noqa: E501

model = dict(
    type='SCAIPoseEstimator',
    backbone=dict(init_cfg=None),
    head=dict(
        _delete_=True,
        type='SCAIHead',
        base_head=_base_.model.head,
        **_base_.scai_head),
    train_cfg=_base_.scai_train_cfg,
    test_cfg=dict(_base_.scai_test_cfg))

optim_wrapper = dict(_delete_=True, **_base_.scai_optim_wrapper)
param_scheduler = dict(_delete_=True, **_base_.scai_param_scheduler)
default_hooks = _base_.scai_default_hooks
