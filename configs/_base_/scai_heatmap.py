# Shared SCAI settings, referenced as `_base_.scai_*` by the SCAI configs.
# The names are unique so they never clash with an inherited MMPose config.

# SCAIHead options (the wrapped `base_head` comes from the MMPose config).
# Default widths meet the cost budget (refinement <= 10 % of HRNet-W32 256x192).
scai_head = dict(
    chains=dict(layout='coco'),
    refiner=dict(
        phi=dict(type='ChainConvNet', width=16, dilations=(1, 2, 4, 8, 4, 1),
                 context_channels=8),
        gamma=dict(type='ChainConvNet', width=16, dilations=(1, 2, 4, 8, 4, 1),
                   context_channels=8),
        corr=dict(type='ChainConvNet', width=16, dilations=(1, 2, 4, 2, 1)),
        correct_slots=('D', ),
        start='phi',
        min_anchor_score=0.1),
    loss=dict(type='ChainHeatmapLoss', mode='l2'),
    loss_corr=dict(type='CorrectionLoss', a=0.85, b=0.65, lam=0.45))

# Stage lengths (epochs): pre-train Φ/Γ, then C with one round, then multi-round.
scai_train_cfg = dict(
    scai=dict(pretrain_epochs=90, correct_epochs=60, max_rounds=3, gamma_uses_lc=False))

# Refinement at test time; `tta` switches on test-time adaptation (see scai_tta.py).
scai_test_cfg = dict(refine=True, rounds=1, tol=1e-3)

# One optimizer per network (spec §6: Adam 1e-3 for Φ/Γ, 4.1e-4 for C, x0.97 per epoch).
# Top-level keys (`--amp`'s type='AmpOptimWrapper', clip_grad=...) apply to every network.
scai_optim_wrapper = dict(
    constructor='SCAIOptimWrapperConstructor',
    phi=dict(optimizer=dict(type='Adam', lr=1e-3)),
    gamma=dict(optimizer=dict(type='Adam', lr=1e-3)),
    corr=dict(optimizer=dict(type='Adam', lr=4.1e-4)))
# One schedule per network, each decaying from the start of its own stage: Φ during
# pre-training, Γ throughout, C from the end of pre-training, so C starts its stage at
# its configured lr. `begin`/`end` are epochs: a config with other stage lengths
# (train_cfg.scai) sets its own (see the LSPET SCAI config). Use it as
# `param_scheduler = dict(_delete_=True, **_base_.scai_param_scheduler)`.
scai_param_scheduler = dict(
    phi=[dict(type='ExponentialLR', gamma=0.97, by_epoch=True, begin=0, end=90)],
    gamma=[dict(type='ExponentialLR', gamma=0.97, by_epoch=True, begin=0)],
    corr=[dict(type='ExponentialLR', gamma=0.97, by_epoch=True, begin=90)])

# Multi-process training (`--launcher pytorch|slurm`): each network's gradients are
# averaged over the ranks before its step (SCAIDistributedDataParallel); no
# find_unused_parameters is needed, as no training forward runs through DDP.
model_wrapper_cfg = dict(
    type='SCAIDistributedDataParallel', broadcast_buffers=False,
    find_unused_parameters=False)

# Training checks (SCAITrainCheckHook): --resume continues SCAI (not the base's
# checkpoint), and warnings/errors for an unloaded base or fully masked batches. A
# default hook, so it merges with `custom_hooks` such as the TTA hook of scai_tta.py.
# Use it as `default_hooks = _base_.scai_default_hooks`.
scai_default_hooks = dict(scai_train_check=dict(type='SCAITrainCheckHook'))
