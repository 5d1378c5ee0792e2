import warnings

import numpy as np
import pytest
import torch
from mmengine.runner import load_checkpoint, save_checkpoint

from mmpose.apis import init_model
from mmpose.registry import MODELS
from mmpose_scai.models import SCAIHead
from tests.test_models.builders import (DARK, MSRA, UDP, base_head, build, fake_samples,
                                        tiny_base_cfg, tiny_scai_cfg)


def predict(model, x, samples, **test_cfg):
    model.eval()
    model.test_cfg.update(test_cfg)
    with torch.no_grad():
        return model.predict(x, [s.clone() for s in samples])


def copy_base(scai, base):
    """Give a SCAI model the weights of a plain base model, through the key remap."""
    missing = scai.load_state_dict(base.state_dict(), strict=False)
    assert not missing.unexpected_keys
    assert all(k.startswith('head.refiner.') or k == 'head.chain_labelled'
               for k in missing.missing_keys)


def test_not_a_heatmap_head_is_a_clear_error():
    with pytest.raises(TypeError, match='RegressionHead'):
        MODELS.build(dict(type='SCAIHead', base_head=dict(
            type='RegressionHead', in_channels=64, num_joints=17)))


def test_keypoint_count_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match='predicts 14 keypoints'):
        MODELS.build(dict(type='SCAIHead', base_head=dict(base_head(), out_channels=14)))


def test_mpii_metainfo_resolves_its_own_chains():
    head = MODELS.build(dict(type='SCAIHead', base_head=dict(base_head(), out_channels=16),
                             metainfo=dict(from_file='configs/_base_/datasets/mpii.py'),
                             chains=dict(layout='mpii')))
    assert head.chains.num_chains == 4


@pytest.mark.parametrize('codec', [MSRA, UDP, DARK], ids=['msra', 'udp', 'dark'])
@pytest.mark.parametrize('flip', [False, True])
def test_predict_decodes_refined_heatmaps_with_each_codec(codec, flip):
    model = build(tiny_scai_cfg(codec, flip_test=flip))
    model.head.chain_labelled.fill_(1)
    torch.nn.init.normal_(model.head.refiner.corr['D'].out.weight, std=0.1)
    samples = fake_samples(3)
    out = predict(model, torch.rand(3, 3, 128, 96), samples, output_heatmaps=True)
    for ds in out:
        pred = ds.pred_instances
        assert pred.keypoints.shape == (1, 17, 2) and np.isfinite(pred.keypoints).all()
        assert pred.keypoint_scores.shape == (1, 17)
        assert pred.keypoint_self_errors.shape == (1, 17)
        assert np.isfinite(pred.keypoint_self_errors).all()  # every COCO kpt is in a chain
        assert ds.pred_fields.heatmaps.shape == (17, 32, 24)


@pytest.mark.parametrize('flip', [False, True])
def test_refine_off_is_exactly_the_base_model(flip):
    base = build(tiny_base_cfg(flip_test=flip))
    scai = build(tiny_scai_cfg(flip_test=flip))
    copy_base(scai, base)
    scai.head.chain_labelled.fill_(1)
    x, samples = torch.rand(2, 3, 128, 96), fake_samples(2)
    ref = predict(base, x, samples)
    off = predict(scai, x, samples, refine=False)
    on = predict(scai, x, samples, refine=True)
    for r, o, n in zip(ref, off, on):
        np.testing.assert_array_equal(r.pred_instances.keypoints, o.pred_instances.keypoints)
        np.testing.assert_array_equal(r.pred_instances.keypoint_scores,
                                      o.pred_instances.keypoint_scores)
        assert n.pred_instances.keypoints.shape == r.pred_instances.keypoints.shape


def test_chains_never_labelled_in_training_pass_the_base_through():
    base = build(tiny_base_cfg())
    scai = build(tiny_scai_cfg())
    copy_base(scai, base)
    torch.nn.init.normal_(scai.head.refiner.corr['D'].out.weight, std=1.)
    scai.head.refiner.start_mode = 'base'
    labelled = torch.ones(6)
    labelled[4:] = 0  # the face chains, as on LSPET
    scai.head.chain_labelled.copy_(labelled)
    x, samples = torch.rand(2, 3, 128, 96), fake_samples(2)
    with pytest.warns(UserWarning, match='left_head'):
        out = predict(scai, x, samples)
    ref = predict(base, x, samples)
    for r, o in zip(ref, out):
        # ears (the D of the face chains) come from the base; E_s is NaN there
        np.testing.assert_array_equal(r.pred_instances.keypoints[0, 3:5],
                                      o.pred_instances.keypoints[0, 3:5])
        assert np.isnan(o.pred_instances.keypoint_self_errors[0, :5]).all()
        assert np.isfinite(o.pred_instances.keypoint_self_errors[0, 5:]).all()


def test_empty_batch_gives_empty_predictions():
    head = build(tiny_scai_cfg()).head.eval()
    feats = (torch.rand(0, 64, 4, 3), )
    preds = head.predict(feats, [])
    assert preds == []


def test_non_finite_heatmaps_are_masked_for_that_instance_only():
    head = build(tiny_scai_cfg()).head.eval()
    head.chain_labelled.fill_(1)
    heatmaps, f = head.base_forward((torch.rand(3, 64, 4, 3), ))
    heatmaps[1, 9] = float('nan')  # left wrist of instance 1
    refined, err, _ = head.refine(heatmaps, f, dict(rounds=2))
    assert torch.isnan(err[1, 0]) and torch.isfinite(err[1, 1:]).all()
    assert torch.isfinite(err[[0, 2]]).all()
    assert torch.isfinite(refined[[0, 2]]).all()


def test_base_checkpoint_to_scai_to_init_model_round_trip(tmp_path):
    from mmengine.config import Config
    base = build(tiny_base_cfg())
    base_ckpt = tmp_path / 'base.pth'
    save_checkpoint(dict(state_dict=base.state_dict(), meta=dict(epoch=1)), str(base_ckpt))

    cfg = Config(dict(model=tiny_scai_cfg(), custom_imports=dict(imports=['mmpose_scai'])))
    scai = MODELS.build(cfg.model)
    load_checkpoint(scai, str(base_ckpt), map_location='cpu', strict=False)
    for (k, v), (kb, vb) in zip(scai.head.base_head.state_dict().items(),
                                base.head.state_dict().items()):
        assert k == kb and torch.equal(v, vb)
    # pretend training happened: non-trivial refiner weights and labelled chains
    for p in scai.head.refiner.parameters():
        torch.nn.init.normal_(p, std=0.05)
    scai.head.chain_labelled.fill_(3)
    scai_ckpt = tmp_path / 'scai.pth'
    save_checkpoint(dict(state_dict=scai.state_dict(), meta=dict(epoch=2)), str(scai_ckpt))

    loaded = init_model(cfg, str(scai_ckpt), device='cpu')
    assert isinstance(loaded.head, SCAIHead)
    x, samples = torch.rand(2, 3, 128, 96), fake_samples(2)
    for a, b in zip(predict(scai, x, samples), predict(loaded, x, samples)):
        np.testing.assert_allclose(a.pred_instances.keypoints, b.pred_instances.keypoints)
        np.testing.assert_allclose(a.pred_instances.keypoint_self_errors,
                                   b.pred_instances.keypoint_self_errors)


def test_refinement_never_ends_above_the_base_self_error():
    head = build(tiny_scai_cfg()).head.eval()
    head.chain_labelled.fill_(1)
    for p in head.refiner.parameters():
        torch.nn.init.normal_(p, std=0.1)
    heatmaps, f = head.base_forward((torch.rand(4, 64, 4, 3), ))
    inp = head.refiner.prepare(heatmaps, f)
    with torch.no_grad():
        state, err, stats = head.refiner.refine(inp, rounds=3, tol=0.)
    assert (err <= stats['E_base'] + 1e-6).all()
    assert (stats['rounds'] <= 3).all()


def test_untrained_refiner_warns_once_and_returns_the_base():
    base = build(tiny_base_cfg())
    scai = build(tiny_scai_cfg())  # chain_labelled all 0: the refiner never trained
    copy_base(scai, base)
    x, samples = torch.rand(2, 3, 128, 96), fake_samples(2)
    with pytest.warns(UserWarning, match='SCAI refines no chain, so the predictions are '
                      "exactly the base model's: the refiner was never trained"):
        out = predict(scai, x, samples)
    for r, o in zip(predict(base, x, samples), out):
        np.testing.assert_array_equal(r.pred_instances.keypoints, o.pred_instances.keypoints)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # once only
        predict(scai, x, samples)


def test_every_chain_disabled_warns():
    scai = build(tiny_scai_cfg(chains=dict(layout='coco', disabled=(
        'left_arm', 'right_arm', 'left_leg', 'right_leg', 'left_head', 'right_head'))))
    scai.head.chain_labelled.fill_(1)
    with pytest.warns(UserWarning, match='every chain is disabled'):
        predict(scai, torch.rand(1, 3, 128, 96), fake_samples(1))


@pytest.mark.parametrize('codec, shift', [(MSRA, True), (DARK, True), (UDP, False)],
                         ids=['msra', 'dark', 'udp'])
def test_flip_shift_defaults_to_mmpose_configs_convention(codec, shift):
    """Without ``shift_heatmap`` in test_cfg, the flip average shifts as MMPose's
    configs do for the codec: equal to the explicit setting, unequal to the other."""
    model = build(tiny_scai_cfg(codec, flip_test=True)).eval()
    x, samples = torch.rand(2, 3, 128, 96), fake_samples(2)
    feats = [model.extract_feat(x), model.extract_feat(x.flip(-1))]
    maps = {}
    for key, cfg in (('default', {}), (True, dict(shift_heatmap=True)),
                     (False, dict(shift_heatmap=False))):
        with torch.no_grad():
            maps[key] = model.head.base_heatmaps(feats, samples, dict(flip_test=True, **cfg))[0]
    assert torch.equal(maps['default'], maps[shift])
    assert not torch.equal(maps['default'], maps[not shift])


def test_predict_outside_no_grad_returns_plain_arrays():
    """``model.test_step`` outside ``torch.no_grad`` (the refiner's weights require
    grad; E_s of the base is computed with them; TTA adapts with gradients on):
    predictions still come back as numpy values."""
    scai = build(tiny_scai_cfg())
    scai.head.chain_labelled.fill_(1)
    torch.nn.init.normal_(scai.head.refiner.corr['D'].out.weight, std=1.)
    scai.eval()
    x, samples = torch.rand(2, 3, 128, 96), fake_samples(2)
    for refine, tta in ((False, None), (True, None), (True, dict(preset='default'))):
        scai.test_cfg.update(refine=refine, tta=tta)
        out = scai.predict(x, [s.clone() for s in samples])
        for o in out:
            assert isinstance(o.pred_instances.keypoints, np.ndarray)
            assert np.isfinite(o.pred_instances.keypoint_self_errors[0, 5:]).all()
