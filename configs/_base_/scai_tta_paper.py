# Test-time adaptation with the paper's schedule (method spec §8): per batch, up to 20
# Adam steps from lr 0.013 decayed x0.96 per step, then up to 20 correction rounds; the
# adapted result is accepted per batch (the paper's rule). Expensive: measured beside the
# default preset (scai_tta.py), not a default.
custom_hooks = [
    dict(
        type='SCAITTAHook',
        phases=('test', ),
        steps=20,
        lr=0.013,
        lr_decay=0.96,
        optimizer='adam',
        mode='episodic',
        unit='batch',
        safeguard='batch',
        select_quantile=None,
        # no trust region: the paper bounds nothing
        max_drift=None,
        early_stop=True,
        rounds=20)
]
