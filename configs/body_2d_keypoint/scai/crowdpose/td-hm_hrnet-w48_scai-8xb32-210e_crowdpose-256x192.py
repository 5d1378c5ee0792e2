# SCAI on a CrowdPose base (14 keypoints; the 'crowdpose' chain layout: four limb
# chains from the annotated neck).
_base_ = [
    '../../topdown_heatmap/crowdpose/td-hm_hrnet-w48_8xb32-210e_crowdpose-256x192.py',
    '../../../_base_/scai_heatmap.py',
]
custom_imports = dict(imports=['mmpose_scai'], allow_failed_imports=False)

# The frozen base: no model-zoo checkpoint exists; train the base config first and pass
# --cfg-options load_from=work_dirs/<base>/best_crowdpose_AP_epoch_N.pth
load_from = None

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
