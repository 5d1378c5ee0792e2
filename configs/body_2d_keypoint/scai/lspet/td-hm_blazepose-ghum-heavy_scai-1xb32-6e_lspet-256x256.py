# SCAI on the frozen BlazePose-GHUM heavy base (converted from MediaPipe's .tflite, not
# trained here; see topdown_heatmap/blazepose): only the refinement networks train, on
# LSPET-train minus the 500-image validation holdout; 256x256 RGB crops, padding 1.5.
# Stage lengths are shortened for 2 CPU cores (3 epochs Φ/Γ, 2 with C, 1 multi-round).
#   python tools/fetch_blazepose.py   # writes the base checkpoint that `load_from` names
_base_ = [
    '../../topdown_heatmap/blazepose/td-hm_blazepose-ghum-heavy_lspet-256x256.py',
    '../../../_base_/scai_heatmap.py',
]

# the frozen base (= mmpose_scai.utils.blazepose_checkpoint_path('heavy'))
load_from = ('{{$SCAI_CACHE_DIR:~/.cache/mmpose_scai}}/'
             'blazepose-ghum-heavy_coco-256x256-59e42d71-v1.pth')

model = dict(
    type='SCAIPoseEstimator',
    head=dict(
        _delete_=True,
        type='SCAIHead',
        base_head=_base_.model.head,
        **_base_.scai_head),
    train_cfg=dict(scai=dict(pretrain_epochs=3, correct_epochs=2, max_rounds=3)),
    test_cfg=dict(_base_.scai_test_cfg, flip_test=False, flip_mode='heatmap',
                  shift_heatmap=True))

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
