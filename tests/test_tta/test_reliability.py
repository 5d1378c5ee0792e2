"""Reliability (issue 14): bad input at build, load and test time, diverging adaptation.

Cases the head, adapter and hook tests already cover are not repeated here; the table
in ``docs/reliability.md`` points at every test, here or there.
"""
import logging

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner import load_checkpoint, save_checkpoint

from mmpose.registry import HOOKS, MODELS
from mmpose_scai.tta import TestTimeAdapter
from mmpose_scai.chains import CHAIN_LAYOUTS, KeypointChains
from mmpose_scai.models.utils.heatmaps import render_gaussians
from tests.test_tta.test_adapter import refiner  # noqa: F401 (module fixture: trained Φ, Γ, C)
from tests.test_tta.test_adapter import inputs, run
from tests.test_models.builders import (DARK, MSRA, UDP, base_head, build, fake_samples,
                                        tiny_base_cfg, tiny_scai_cfg)


def hub_scalar(name: str) -> float:
    return MessageHub.get_current_instance().get_scalar(name).current()


# ------------------------------------------------------------------ build time
def test_a_layout_without_chains_is_named():
    CHAIN_LAYOUTS.register_module('empty_for_test', module=lambda: dict(chains={},
                                                                         virtual={}))
    try:
        with pytest.raises(ValueError,
                           match=r"\(layout 'empty_for_test'\) defines no chains"):
            KeypointChains(['a', 'b', 'c', 'd'], layout='empty_for_test')
    finally:
        CHAIN_LAYOUTS._module_dict.pop('empty_for_test')


COCO = ['nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder',
        'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
        'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle']


def test_a_virtual_keypoint_of_missing_keypoints_is_named():
    with pytest.raises(ValueError, match=r"Virtual keypoint 'neck' .* missing \['chest'\]"):
        KeypointChains(COCO, layout='coco', virtual=dict(neck=('left_shoulder', 'chest')))


@pytest.mark.parametrize('options, match', [
    (dict(correct_slots=('A', 'D')), r"correct_slots .* got \('A', 'D'\)"),
    (dict(correct_slots=()), r'correct_slots .* got \(\)'),
    (dict(start='gt'), "start must be .* got 'gt'"),
    (dict(min_anchor_score=1.0), r'min_anchor_score must be in \[0, 1\), got 1.0'),
    (dict(min_anchor_score=-0.1), 'got -0.1'),
])
def test_refiner_options_out_of_range_are_named(options, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='SCAIHead', base_head=base_head(), refiner=options))


def test_scai_estimator_without_scai_head_is_named():
    cfg = dict(tiny_scai_cfg(), head=base_head())
    with pytest.raises(TypeError, match='needs head=dict.*SCAIHead.*got HeatmapHead'):
        MODELS.build(cfg)


# ----------------------------------------------------------------- checkpoints
def save(model, path) -> str:
    save_checkpoint(dict(state_dict=model.state_dict(), meta=dict(epoch=1)), str(path))
    return str(path)


def test_checkpoint_with_another_keypoint_count_is_a_clear_error(tmp_path):
    # MMEngine's Runner loads `load_from` with strict=False, which would only warn and
    # leave the final layer random: the head refuses the file instead.
    cfg = tiny_base_cfg()
    cfg['head'] = dict(base_head(), out_channels=14)
    ckpt = save(build(cfg), tmp_path / 'crowdpose_base.pth')
    scai = build(tiny_scai_cfg())
    with pytest.raises(ValueError, match=r'predicts 14 keypoints \(head.base_head.'
                       r'final_layer.weight has shape \(14, 32, 1, 1\)\), the model 17'):
        load_checkpoint(scai, ckpt, map_location='cpu', strict=False, logger='silent')


@pytest.mark.parametrize('other, match', [
    (dict(refiner=dict(min_anchor_score=0., correct_slots=('C', 'D'))),
     r"unexpected \['head.refiner.corr.C.*'\]"),
    (dict(refiner=dict(min_anchor_score=0.,
                       corr=dict(type='ChainConvNet', dilations=(1, 2)))),
     r"missing \['head.refiner.corr.D.body.2"),
    (dict(refiner=dict(min_anchor_score=0., phi=dict(type='ChainConvNet',
                                                     context_channels=4))),
     r"shape mismatch \['head.refiner.phi.squeeze.weight: checkpoint \(4, 32, 1, 1\), "
     r"model \(8, 32, 1, 1\)"),
], ids=['slots', 'depth', 'width'])
def test_scai_checkpoint_of_another_refiner_lists_the_keys(tmp_path, other, match):
    ckpt = save(build(tiny_scai_cfg(**other)), tmp_path / 'scai.pth')
    model = build(tiny_scai_cfg())
    with pytest.raises(ValueError, match=match):
        load_checkpoint(model, ckpt, map_location='cpu', strict=False, logger='silent')


def test_scai_checkpoint_missing_refiner_keys_are_listed(tmp_path):
    scai = build(tiny_scai_cfg())
    state = {k: v for k, v in scai.state_dict().items()
             if not k.startswith('head.refiner.gamma.')}
    path = str(tmp_path / 'partial.pth')
    save_checkpoint(dict(state_dict=state), path)
    with pytest.raises(ValueError, match=r"missing \['head.refiner.gamma"):
        load_checkpoint(build(tiny_scai_cfg()), path, map_location='cpu', strict=False,
                        logger='silent')
    # the same file without any refiner key is a base checkpoint and loads
    base = {k: v for k, v in state.items() if not k.startswith('head.refiner.')}
    save_checkpoint(dict(state_dict=base), path)
    load_checkpoint(build(tiny_scai_cfg()), path, map_location='cpu', strict=False,
                    logger='silent')


# ------------------------------------------------------------ safe inference
def scai_head(codec=MSRA, min_anchor_score=0.1):
    head = build(tiny_scai_cfg(codec, refiner=dict(min_anchor_score=min_anchor_score)))
    head = head.head.eval()
    head.chain_labelled.fill_(1)
    torch.nn.init.normal_(head.refiner.corr['D'].out.weight, std=0.1)
    return head


def person_heatmaps(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coords = torch.rand(n, 17, 2, generator=g) * torch.tensor([20., 28.]) + 2
    return render_gaussians(coords, torch.ones(n, 17), (24, 32), 2.)


def predict_on(head, heatmaps, monkeypatch, **test_cfg):
    """SCAIHead.predict with the base's heatmaps replaced by ``heatmaps``."""
    f = torch.zeros(len(heatmaps), 32, *heatmaps.shape[-2:])
    monkeypatch.setattr(head, 'base_forward', lambda feats: (heatmaps.clone(), f))
    with torch.no_grad():
        return head.predict((torch.zeros(len(heatmaps), 64, 4, 3), ),
                            fake_samples(len(heatmaps)), test_cfg)


def test_masked_instances_warn_count_and_get_the_base(monkeypatch):
    head = scai_head()
    hm = person_heatmaps(4)
    hm[1, 9] = float('nan')  # a non-finite left wrist
    hm[2] = 0.  # all-zero heatmaps: no usable anchor
    hm[3, 5:7] *= 0.05  # both shoulders weak: the neck (virtual anchor) is unusable
    with pytest.warns(UserWarning, match='masked 3 of 4 instances'):
        preds = predict_on(head, hm, monkeypatch)
    assert hub_scalar('test/scai_masked_instances') == 3
    base = head.base_head.decode(torch.nan_to_num(hm))
    for p in preds:
        assert np.isfinite(p.keypoints).all() and np.isfinite(p.keypoint_scores).all()
    # masked chains keep the base: the rest of the left arm of 1, all of 2 and 3
    for i, kpts in ((1, [5, 7]), (2, range(17)), (3, range(17))):
        np.testing.assert_array_equal(preds[i].keypoints[0, kpts],
                                      base[i].keypoints[0, kpts])
    assert not np.array_equal(preds[0].keypoints, base[0].keypoints)  # 0 was refined
    # the non-finite keypoint: score 0 at the box centre (input_size / 2)
    assert preds[1].keypoint_scores[0, 9] == 0
    np.testing.assert_array_equal(preds[1].keypoints[0, 9], [48., 64.])
    assert np.isnan(preds[2].keypoint_self_errors).all()
    # warned once; the count is still logged per batch
    with _no_warning():
        predict_on(head, hm[:2], monkeypatch)
    assert hub_scalar('test/scai_masked_instances') == 1


class _no_warning:
    def __enter__(self):
        import warnings
        self._ctx = warnings.catch_warnings(record=True)
        self.log = self._ctx.__enter__()
        warnings.simplefilter('always')

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)
        assert not [w for w in self.log if 'masked' in str(w.message)]


@pytest.mark.parametrize('codec', [MSRA, UDP, DARK], ids=['msra', 'udp', 'dark'])
def test_non_finite_heatmaps_never_reach_the_user(codec, monkeypatch):
    head = scai_head(codec)
    hm = person_heatmaps(2)
    hm[1] = float('nan')  # every channel of instance 1
    hm[0, 3] = float('inf')
    with pytest.warns(UserWarning, match='masked 2 of 2'):
        preds, fields = predict_on(head, hm, monkeypatch, output_heatmaps=True)
    for p, h in zip(preds, fields):
        assert np.isfinite(p.keypoints).all() and np.isfinite(p.keypoint_scores).all()
        assert torch.isfinite(h.heatmaps).all()
    assert (preds[1].keypoint_scores == 0).all()
    assert (preds[1].keypoints == [48., 64.]).all()  # the box centre (input_size / 2)
    assert preds[0].keypoint_scores[0, 3] == 0
    assert (preds[0].keypoints[0, 3] == [48., 64.]).all()
    assert (preds[0].keypoint_scores[0, [0, 1, 2, 5, 6]] > 0.5).all()


@pytest.mark.parametrize('tta', [None, dict(steps=2, lr=1e-2)], ids=['plain', 'tta'])
def test_batch_of_one_including_a_fully_masked_one(tta, monkeypatch):
    head = scai_head()
    if tta:
        head.adapter = TestTimeAdapter(**tta)
    hm = person_heatmaps(3)
    alone = predict_on(head, hm[:1], monkeypatch)
    batch = predict_on(head, hm, monkeypatch)
    if tta is None:  # without adaptation an instance does not depend on its batch
        np.testing.assert_allclose(alone[0].keypoints, batch[0].keypoints)
    nan = torch.full_like(hm[:1], float('nan'))
    with pytest.warns(UserWarning, match='masked 1 of 1'):
        out = predict_on(head, nan, monkeypatch)
    assert (out[0].keypoint_scores == 0).all() and np.isfinite(out[0].keypoints).all()
    assert np.isnan(out[0].keypoint_self_errors).all()


# ------------------------------------------------------- diverging adaptation
STEPS = 5


@pytest.mark.parametrize('lr', [1e3, 1e12], ids=['lr_x1e5', 'lr_inf'])
def test_diverging_adaptation_stops_and_falls_back(refiner, lr):  # noqa: F811
    inp = inputs(refiner, 20)
    with torch.no_grad():
        _, plain_err, plain = refiner.refine(inp, 1, 1e-3)
    # without the trust region, which would keep such steps from diverging at all
    adapter = TestTimeAdapter(steps=STEPS, lr=lr, optimizer='sgd', select_quantile=None,
                              early_stop=False, max_drift=None)
    _, err, stats = run(adapter, refiner, inp)
    row = adapter.history[-1]
    assert row['diverged'] == 1 and row['steps'] < STEPS  # stopped, not run to the end
    fell_back = stats['tta_selected'] & ~stats['tta_accepted']
    assert row['fallbacks'] == fell_back.sum() and row['selected'] == inp.valid.sum()
    assert hub_scalar('test/tta_fallbacks') == row['fallbacks']
    assert hub_scalar('test/tta_diverged') == 1
    # per instance and chain: never above the non-adapted result, nor the base
    assert (err <= plain_err).all() and (err <= plain['E_base'] + 1e-6).all()
    assert torch.equal(err[fell_back], plain_err[fell_back])
    if lr == 1e12:  # C is non-finite after one step: the best state seen is the trained C
        assert row['steps'] == 1 and fell_back.equal(inp.valid)
        assert torch.equal(err, plain_err)


@pytest.mark.parametrize('optimizer', ['sgd', 'adam'])
def test_trust_region_bounds_C_under_a_huge_lr(refiner, optimizer):  # noqa: F811
    inp = inputs(refiner, 20)
    with torch.no_grad():
        _, plain_err, _ = refiner.refine(inp, 1, 1e-3)
    kw = dict(steps=STEPS, lr=1e3, optimizer=optimizer, select_quantile=None,
              early_stop=False)
    bounded, free = TestTimeAdapter(**kw), TestTimeAdapter(**dict(kw, max_drift=None))
    _, err, _ = run(bounded, refiner, inp)
    row = bounded.history[-1]
    assert row['projected'] >= 1 and row['drift'] <= bounded.max_drift * (1 + 1e-4)
    assert hub_scalar('test/tta_projected') == row['projected']
    assert (err <= plain_err).all()
    run(free, refiner, inp)  # unbounded, the same steps leave the ball or diverge
    free_row = free.history[-1]
    assert free_row['diverged'] == 1 or free_row['drift'] > bounded.max_drift


def test_a_sane_lr_does_not_always_fall_back(refiner):  # noqa: F811
    adapter = TestTimeAdapter(steps=3, lr=1e-2, select_quantile=None)
    run(adapter, refiner, inputs(refiner, 21))
    row = adapter.history[-1]
    assert row['diverged'] == 0 and 0 <= row['fallbacks'] < row['selected']


def test_hook_summary_logs_the_fallbacks(caplog):
    hook = HOOKS.build(dict(type='SCAITTAHook'))
    row = dict(E_s_before=1., E_s_after=.9, steps=1., rounds=1., selected_frac=1.,
               accepted_frac=.5, drift_resets=0., fallbacks=3., selected=8., diverged=1.,
               time=.01)
    hook.adapter.history[:] = [row, dict(row, diverged=0.)]
    logger = logging.getLogger('scai_reliability_test')
    runner = type('R', (), dict(logger=logger))()
    with caplog.at_level(logging.INFO, logger=logger.name):
        hook._log_summary(runner, 'test')
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and '6 of 16 selected chains (37.5%) fell back' in warned[0]
    assert 'diverged (stopped early) in 1 runs' in warned[0]
    assert '0 steps pulled back to max_drift=0.05' in warned[0]
    # nothing diverged: the same line at INFO level (a fallback alone is the safeguard
    # doing its job)
    caplog.clear()
    hook.adapter.history[:] = [dict(row, diverged=0.)]
    with caplog.at_level(logging.INFO, logger=logger.name):
        hook._log_summary(runner, 'test')
    assert [r.levelno for r in caplog.records if 'fell back' in r.getMessage()] == \
        [logging.INFO]
