# SCAI on the small LSPET base (see topdown_heatmap/lspet): the base is frozen, only the
# refinement networks train; stage lengths are shortened for 2 CPU cores.
_base_ = [
    '../../topdown_heatmap/lspet/td-hm_res18_1xb32-6e_lspet-128x96.py',
    '../../../_base_/scai_heatmap.py',
]

# the base checkpoint (e.g. from tools/train.py on the base config); override on the
# command line: --cfg-options load_from=work_dirs/<base>/best_coco_AP_epoch_N.pth
load_from = None

model = dict(
    type='SCAIPoseEstimator',
    head=dict(
        _delete_=True,
        type='SCAIHead',
        base_head=_base_.model.head,
        **_base_.scai_head),
    train_cfg=dict(scai=dict(pretrain_epochs=3, correct_epochs=2, max_rounds=3)),
    test_cfg=dict(_base_.scai_test_cfg, flip_test=False))

train_cfg = dict(max_epochs=6, val_interval=1)
optim_wrapper = dict(_delete_=True, **_base_.scai_optim_wrapper)
# per-network schedules as in scai_heatmap.py, with this config's stage lengths:
# Φ decays over its 3 pre-training epochs, C from epoch 3 (its stage's start) on
param_scheduler = dict(
    _delete_=True,
    phi=[dict(type='ExponentialLR', gamma=0.97, by_epoch=True, begin=0, end=3)],
    gamma=[dict(type='ExponentialLR', gamma=0.97, by_epoch=True, begin=0)],
    corr=[dict(type='ExponentialLR', gamma=0.97, by_epoch=True, begin=3)])
default_hooks = dict(
    checkpoint=dict(save_best=None, interval=1, max_keep_ckpts=1),
    **_base_.scai_default_hooks)
