# Test-time adaptation of SCAI's correction networks with the `default` preset
# (mmpose_scai.tta.PRESETS: two Adam steps per batch on the worse half of the chains,
# episodic, per-instance safeguard, trust region). Switch it on for `mim test` in a
# config that inherits a SCAI config:
#   _base_ = ['<a SCAI config>', 'mmpose_scai::_base_/scai_tta.py']
#   custom_hooks = _base_.custom_hooks + [_base_.scai_tta_hook]
# (MMPose's runtime defines `custom_hooks`, so the hook is a separate name here).
# Add phases=('val', 'test') to also adapt during validation. Without a Runner
# (`init_model` + `inference_topdown`), use model.test_cfg.tta = dict(preset='default').
scai_tta_hook = dict(type='SCAITTAHook', phases=('test', ), preset='default')
