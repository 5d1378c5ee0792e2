# Test-time adaptation with the paper's schedule, the `paper` preset
# (mmpose_scai.tta.PRESETS: per batch up to 20 Adam steps from lr 0.013 decayed x0.96,
# then up to 20 correction rounds, accepted per batch, no trust region). Expensive:
# measured beside the default preset, not a default. Used like scai_tta.py (which
# defines the same name, so a config takes one of the two):
#   custom_hooks = _base_.custom_hooks + [_base_.scai_tta_hook]
scai_tta_hook = dict(type='SCAITTAHook', phases=('test', ), preset='paper')
