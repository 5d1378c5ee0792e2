# Test-time adaptation of SCAI's correction networks (method spec §8), default preset:
# two Adam steps (lr 1e-3) on the worse half of the chains by E_s, per batch (episodic:
# C is reset to its trained weights after every batch), per-instance safeguard. Meets
# the cost goal of spec §4 (<= 1x the base forward per batch). Add this file to a SCAI
# config's `_base_`; the hook is active in `mim test` (add phases=('val', 'test') to also
# adapt during validation). For `inference_topdown` without a Runner, use instead
# model.test_cfg.tta = dict(preset='default').
custom_hooks = [
    dict(
        type='SCAITTAHook',
        phases=('test', ),
        steps=2,
        lr=1e-3,
        lr_decay=1.0,
        optimizer='adam',
        mode='episodic',
        unit='batch',
        safeguard='instance',
        select_quantile=0.5,
        # trust region: C stays within 5 % (L2) of its trained weights
        max_drift=0.05,
        early_stop=True)
]
