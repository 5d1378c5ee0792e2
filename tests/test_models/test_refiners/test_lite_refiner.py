"""SCAI-Lite: the coordinate refiner behind the same head, losses and adapter."""
import numpy as np
import pytest
import torch
from mmengine.runner import load_checkpoint, save_checkpoint

from mmpose_scai.tta import TestTimeAdapter
from mmpose_scai.chains import KeypointChains
from benchmarks.cost import refinement_latency
from mmpose_scai.models import SCAILiteRefiner
from mmpose_scai.models.utils.heatmaps import heatmap_peaks, render_gaussians
from mmpose_scai.models.refiners.lite_refiner import denormalize_points, normalize_points
from benchmarks.lite_prior import (ErrorModel, chain_targets, evaluate_points, fit,
                                           load_pose_priors, map_to_coco17,
                                           point_batches, prior_batches, to_heatmap_frame)
from mmpose_scai.structures import ChainState
from tests.test_models.builders import DARK, MSRA, UDP, build, fake_samples, tiny_scai_cfg

SIZE = (24, 32)  # heatmap (w, h)
COCO_NAMES = ['nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder',
              'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
              'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle',
              'right_ankle']
LITE = dict(type='SCAILiteRefiner', min_anchor_score=0.)


def lite_model(codec=MSRA, flip_test=False, **refiner):
    model = build(tiny_scai_cfg(codec, flip_test, refiner=dict(LITE, **refiner)))
    model.head.chain_labelled.fill_(1)
    return model.eval()


def refiner_(**kw) -> SCAILiteRefiner:
    torch.manual_seed(0)
    return SCAILiteRefiner(KeypointChains(COCO_NAMES), **dict(dict(min_anchor_score=0.),
                                                              **kw))


def skeleton(n, seed=0):
    """Random keypoints well inside the heatmap (heatmap pixels)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 17, 2, generator=g) * torch.tensor([16., 24.]) + 4


def heatmaps_of(coords, amp=None, sigma=2.):
    amp = torch.ones(coords.shape[:2]) if amp is None else amp
    return render_gaussians(coords, amp, SIZE, sigma)


def zero_out(net):
    with torch.no_grad():
        net.weights[-1].zero_()
        net.biases[-1].zero_()


# ------------------------------------------------------------------------ shapes
def test_prepare_decodes_chain_points_and_scores():
    r = refiner_()
    xy = skeleton(3)
    amp = torch.rand(3, 17) * 0.5 + 0.4
    inp = r.prepare(heatmaps_of(xy, amp), None)
    g = r.chains.num_chains
    assert inp.anchor.shape == inp.base.D.shape == (3, g, 1, 2)
    assert inp.context['scores'].shape == (3, g, 4) and inp.valid.all()
    left_arm = r.chains.names.index('left_arm')
    pix = denormalize_points(inp.base.D[:, left_arm, 0], SIZE)
    torch.testing.assert_close(pix, xy[:, 9], atol=1e-3, rtol=0)  # left wrist
    neck = denormalize_points(inp.anchor[:, left_arm, 0], SIZE)
    torch.testing.assert_close(neck, xy[:, 5:7].mean(1), atol=1e-3, rtol=0)
    sc = inp.context['scores'][:, left_arm]
    _, maxvals = heatmap_peaks(heatmaps_of(xy, amp))  # the heatmap maxima are the scores
    torch.testing.assert_close(sc[:, 0], maxvals[:, 5:7].min(1).values)
    torch.testing.assert_close(sc[:, 3], maxvals[:, 9])
    # the verbs keep the [B, G, 1, 2] contract, the feedback is [B, G, 1, 10]
    state = r.start(inp)
    err, fb = r.self_error(inp, state)
    assert state.D.shape == (3, g, 1, 2) and err.shape == (3, g) and fb.shape == (3, g, 1, 10)
    assert r.correct(state, fb).D.shape == (3, g, 1, 2)
    out, e, stats = r.refine(inp, rounds=2)
    assert out.D.shape == (3, g, 1, 2) and e.shape == (3, g)
    assert r.targets(heatmaps_of(xy)).shape == (3, g, 4, 1, 2)


def test_normalized_frame_round_trips_and_is_isotropic():
    xy = torch.tensor([[0., 0.], [12., 16.], [23., 31.]])
    uv = normalize_points(xy, SIZE)
    torch.testing.assert_close(denormalize_points(uv, SIZE), xy)
    torch.testing.assert_close(uv[1], torch.zeros(2))
    assert torch.isclose(uv[2, 1] - uv[1, 1], torch.tensor(15. / 32))
    assert torch.isclose(uv[2, 0] - uv[1, 0], torch.tensor(11. / 32))  # same unit on x


# ------------------------------------------------------------------------ losses
def test_losses_in_coordinate_form_match_hand_computed_values():
    """With Φ and Γ zeroed, Φ(A,B,C) = C and Γ(B,C,D) = B, so every term is a point
    distance that can be written down."""
    model = lite_model(start='base')
    head, r = model.head, model.head.refiner
    zero_out(r.phi)
    zero_out(r.gamma)
    xy = skeleton(2, seed=1)
    gt = xy.clone()
    gt[:, 9] += torch.tensor([3., 4.])  # left wrist: base is 5 px off
    inp = r.prepare(heatmaps_of(xy), None)
    tgt = chain_targets(r, gt, torch.ones(2, 17), inp, SIZE)
    unit = float(max(SIZE))
    dist = lambda a, b: (a - b).norm(dim=-1) / unit  # noqa: E731

    # E_s = |Γ(B,C,D) − A| = |B − A|
    err, fb = r.self_error(inp, inp.base)
    arm = r.chains.names.index('left_arm')
    torch.testing.assert_close(err[:, arm], dist(xy[:, 5], xy[:, 5:7].mean(1)))
    torch.testing.assert_close(fb[:, arm, 0, :2] * unit, xy[:, 5:7].mean(1) - xy[:, 5])

    # L_Φ = mean over chains of |C − D*| + |B − A*|
    slots = r.chains.index
    ext = torch.cat([gt, gt[:, 5:7].mean(1, keepdim=True)], 1)
    exp_l0 = dist(xy[:, slots[:, 2]], gt[:, slots[:, 3]]).mean()
    exp_ga = dist(xy[:, slots[:, 1]], ext[:, slots[:, 0]]).mean()
    phi = head.loss_phi(inp, tgt, None)['loss_phi']
    torch.testing.assert_close(phi, exp_l0 + exp_ga)

    # L_C (eq. 8) with an untrained (identity) C from the base: L1 = L2 = |B − A*|
    losses, _ = head.loss_correction(inp, tgt, None)
    exp_d = dist(xy[:, slots[:, 3]], gt[:, slots[:, 3]]).mean()
    torch.testing.assert_close(losses['l0'], exp_d)
    torch.testing.assert_close(losses['l1'], exp_ga)
    torch.testing.assert_close(losses['l2'], exp_ga)
    torch.testing.assert_close(losses['loss_corr'], 0.85 * exp_d + 0.65 * exp_ga)
    assert exp_d > 0  # the wrist error shows up


def test_correction_loss_moves_C_toward_the_truth():
    model = lite_model(start='base')
    head, r = model.head, model.head.refiner
    xy = skeleton(8, seed=2)
    gt = xy.clone()
    gt[:, [9, 10, 15, 16]] += 2.
    inp = r.prepare(heatmaps_of(xy), None)
    tgt = chain_targets(r, gt, torch.ones(8, 17), inp, SIZE)
    opt = torch.optim.Adam(r.corr.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        losses, _ = head.loss_correction(inp, tgt, None)
        first = first if first is not None else losses['l0'].item()
        opt.zero_grad()
        losses['loss_corr'].backward()
        opt.step()
    assert losses['l0'].item() < 0.5 * first


# ----------------------------------------------------------------------- masking
def test_masking_unlabelled_low_score_disabled_and_non_finite_chains():
    r = refiner_(min_anchor_score=0.3)
    xy = skeleton(4, seed=3)
    amp = torch.ones(4, 17)
    amp[1, 6] = 0.1  # instance 1: right shoulder weak -> neck weak -> every chain off
    hm = heatmaps_of(xy, amp)
    hm[2, 15] = float('nan')  # instance 2: left ankle broken -> left leg off
    enabled = torch.ones(r.chains.num_chains, dtype=torch.bool)
    enabled[r.chains.names.index('right_arm')] = False
    inp = r.prepare(hm, None, enabled)
    names = r.chains.names
    assert not inp.valid[1].any()
    assert not inp.valid[2, names.index('left_leg')] and inp.valid[2, names.index('left_arm')]
    assert not inp.valid[:, names.index('right_arm')].any()
    w = torch.ones(4, 17)
    w[0, 9] = 0  # instance 0: left wrist unlabelled -> no loss on the left arm
    tgt = chain_targets(r, xy, w, inp, SIZE)
    assert not tgt.mask[0, names.index('left_arm')] and tgt.mask[0, names.index('left_leg')]
    assert not (tgt.mask & ~inp.valid).any()
    # refine keeps the base wherever a chain is invalid; write_back leaves those alone
    with torch.no_grad():
        state, err, stats = r.refine(inp)
    assert stats['use_base'][~inp.valid].all()
    moved = ChainState(state.B, state.C, state.D + 0.05)
    out = r.write_back(hm, moved, inp.valid)
    assert torch.equal(out[1], hm[1])  # no valid chain in instance 1
    assert torch.equal(out[:, 10], hm[:, 10])  # right wrist: right arm disabled
    assert not torch.equal(out[0, 9], hm[0, 9])


def test_selective_correction_refines_only_uncertain_distal_joints():
    r = refiner_(max_distal_score=0.5)
    xy = skeleton(2, seed=9)
    amp = torch.ones(2, 17)
    amp[0, 9] = 0.3  # instance 0: uncertain left wrist
    inp = r.prepare(heatmaps_of(xy, amp), None)
    arm = r.chains.names.index('left_arm')
    assert inp.valid[0, arm] and not inp.valid[1, arm]
    assert inp.valid.sum() == 1


def test_write_back_renders_points_the_base_codec_decodes():
    for codec in (DARK, UDP):
        model = lite_model(codec)
        r = model.head.refiner
        xy = skeleton(2, seed=4)
        amp = torch.full((2, 17), 0.7)
        hm = heatmaps_of(xy, amp)
        inp = r.prepare(hm, None)
        new_d = inp.base.D + torch.tensor([1.5, -1.0]) / max(SIZE)
        out = r.write_back(hm, replace_d(inp.base, new_d), inp.valid)
        coords, maxvals = heatmap_peaks(out)
        wrist = xy[:, 9] + torch.tensor([1.5, -1.0])
        torch.testing.assert_close(coords[:, 9], wrist, atol=1e-3, rtol=0)
        # amplitude: the base heatmap's own maximum (the rendered grid max is below it)
        assert (maxvals[:, 9] <= heatmap_peaks(hm)[1][:, 9] + 1e-6).all()
        assert (maxvals[:, 9] > 0.6 * 0.7).all()
        assert torch.equal(out[:, 7], hm[:, 7])  # elbows (slot C) are not written
        pred = model.head.base_head.decode(out)
        kp = np.stack([p.keypoints[0] for p in pred])  # input pixels, 4 per heatmap px
        stride = 96 / 24 if codec is DARK else 95 / 23
        np.testing.assert_allclose(kp[:, 9], wrist.numpy() * stride, atol=1.)  # < 1/4 px


def replace_d(state, d):
    return ChainState(state.B, state.C, d)


# ------------------------------------------------------------ head and checkpoint
@pytest.mark.parametrize('codec', [MSRA, UDP, DARK], ids=['msra', 'udp', 'dark'])
def test_head_predicts_with_the_lite_refiner_through_the_base_codec(codec):
    model = lite_model(codec, flip_test=True)
    torch.nn.init.normal_(model.head.refiner.corr['D'].weights[-1], std=0.5)
    samples = fake_samples(3)
    model.test_cfg.update(output_heatmaps=True)
    with torch.no_grad():
        out = model.predict(torch.rand(3, 3, 128, 96), [s.clone() for s in samples])
    for ds in out:
        assert ds.pred_instances.keypoints.shape == (1, 17, 2)
        assert np.isfinite(ds.pred_instances.keypoints).all()
        assert ds.pred_instances.keypoint_self_errors.shape == (1, 17)
        assert ds.pred_fields.heatmaps.shape == (17, 32, 24)
    assert type(model.head.refiner).__name__ == 'SCAILiteRefiner'


def test_refine_off_is_the_base_and_checkpoint_round_trip(tmp_path):
    model = lite_model()
    r = model.head.refiner
    for net in (r.phi, r.gamma, r.corr['D']):
        torch.nn.init.normal_(net.weights[-1], std=0.3)
    x, samples = torch.rand(2, 3, 128, 96), fake_samples(2)

    def predict(m, **cfg):
        m.test_cfg.update(cfg)
        with torch.no_grad():
            return np.stack([d.pred_instances.keypoints[0]
                             for d in m.predict(x, [s.clone() for s in samples])])

    feats = model.extract_feat(x)
    hm, _ = model.head.base_forward(feats)
    base = np.stack([p.keypoints[0] for p in model.head.base_head.decode(hm)])
    np.testing.assert_array_equal(predict(model, refine=False), base)
    ref = predict(model, refine=True)
    path = str(tmp_path / 'lite.pth')
    save_checkpoint(dict(state_dict=model.state_dict()), path)
    other = build(tiny_scai_cfg(refiner=dict(LITE)))
    load_checkpoint(other, path, map_location='cpu', logger='silent')
    assert other.head.chain_labelled.eq(1).all()
    np.testing.assert_array_equal(predict(other.eval(), refine=True), ref)
    keys = [k for k in model.state_dict() if k.startswith('head.refiner.')]
    assert keys and all(torch.equal(model.state_dict()[k], other.state_dict()[k])
                        for k in keys)


def test_staged_estimator_trains_the_lite_networks():
    from mmpose_scai.engine import SCAIOptimWrapperConstructor
    from mmengine.logging import MessageHub
    from tests.test_models.builders import fake_batch
    model = build(tiny_scai_cfg(refiner=dict(LITE)))
    optim = SCAIOptimWrapperConstructor(dict(
        phi=dict(optimizer=dict(type='Adam', lr=1e-3)),
        gamma=dict(optimizer=dict(type='Adam', lr=1e-3)),
        corr=dict(optimizer=dict(type='Adam', lr=1e-3))))(model)
    model.train()
    r = model.head.refiner
    before = {k: v.clone() for k, v in r.state_dict().items()}
    MessageHub.get_current_instance().update_info('epoch', 0)
    logs = model.train_step(fake_batch(2), optim)
    assert 'loss_phi' in logs and 'loss_gamma' in logs
    changed = lambda p: any(not torch.equal(v, before[k])  # noqa: E731
                            for k, v in r.state_dict().items() if k.startswith(p))
    assert changed('phi.') and changed('gamma.') and not changed('corr.')
    MessageHub.get_current_instance().update_info('epoch', 1)
    logs = model.train_step(fake_batch(2, seed=1), optim)
    assert 'loss_corr' in logs and changed('corr.')


# ------------------------------------------------------------------ adaptation
def test_tta_with_the_shared_adapter_is_stateless():
    r = refiner_()
    for net in (r.phi, r.gamma, r.corr['D']):
        torch.nn.init.normal_(net.weights[-1], std=0.3)
    trained = {k: v.clone() for k, v in r.state_dict().items()}
    adapter = TestTimeAdapter(steps=3, lr=0.05, select_quantile=None, early_stop=False)
    inp = r.prepare(heatmaps_of(skeleton(6, seed=5)), None)
    with torch.no_grad():
        _, err0, _ = r.refine(inp)
    first = adapter.refine(r, inp)
    assert all(torch.equal(v, trained[k]) for k, v in r.state_dict().items())
    assert all(p.grad is None for p in r.parameters())
    adapter.refine(r, r.prepare(heatmaps_of(skeleton(6, seed=6)), None))
    again = adapter.refine(r, inp)
    torch.testing.assert_close(again[0].D, first[0].D)
    torch.testing.assert_close(again[1], first[1])
    assert (first[1] <= err0 + 1e-6).all()  # the safeguard never makes E_s worse
    assert adapter.history[0]['steps'] > 0


def test_latency_helper_reports_with_and_without_tta():
    model = lite_model()
    hm = heatmaps_of(skeleton(4, seed=7))
    out = refinement_latency(model.head, hm, repeat=2, tta=dict())
    assert out['batch'] == 4 and out['refined_frac'] == 1.
    assert out['ms_per_instance'] > 0 and out['tta_ms_per_instance'] > 0
    assert model.head.adapter is None


# ------------------------------------------------------------- prior training
def test_joint_names_map_to_coco_slots_and_neck():
    mpii = ['right_ankle', 'right_knee', 'right_hip', 'left_hip', 'left_knee',
            'left_ankle', 'pelvis', 'thorax', 'upper_neck', 'head_top', 'right_wrist',
            'right_elbow', 'right_shoulder', 'left_shoulder', 'left_elbow', 'left_wrist']
    kp = np.arange(16 * 2, dtype=np.float32).reshape(1, 16, 2)
    kpts, vis, neck, neck_vis = map_to_coco17(kp, np.full((1, 16), 2), mpii)
    assert not vis[0, :5].any() and vis[0, 5:].all()  # no face in MPII
    np.testing.assert_array_equal(kpts[0, COCO_NAMES.index('left_wrist')], kp[0, 15])
    np.testing.assert_array_equal(kpts[0, COCO_NAMES.index('right_ankle')], kp[0, 0])
    np.testing.assert_array_equal(neck[0], kp[0, 7]) and neck_vis[0]  # thorax
    coco = np.zeros((1, 17, 2), np.float32)
    coco[0, 5], coco[0, 6] = (2, 4), (6, 8)
    _, _, neck, neck_vis = map_to_coco17(coco, np.full((1, 17), 2), COCO_NAMES)
    np.testing.assert_array_equal(neck[0], (4, 6)) and neck_vis[0]


def test_heatmap_frame_matches_the_topdown_crop():
    bbox = np.array([[10., 20., 30., 40.]], np.float32)  # 3:4 already
    kp = np.array([[[25., 40.], [10. - 30 * 0.125, 20. - 40 * 0.125]]], np.float32)
    out = to_heatmap_frame(kp, bbox, np.ones(1, np.float32), SIZE)
    np.testing.assert_allclose(out[0, 0], (12., 16.), atol=1e-4)  # box centre
    np.testing.assert_allclose(out[0, 1], (0., 0.), atol=1e-4)  # padded corner


def test_error_model_from_predictions_and_fallback():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 20, (50, 17, 2)).astype(np.float32)
    pred = gt + 1.
    w = np.ones((50, 17))
    w[:, :5] = 0  # no face labels: the fallback's pool is used there
    em = ErrorModel.from_predictions(pred, np.full((50, 17), 0.8), gt, w)
    err, sc = em.sample(10, rng)
    assert err.shape == (10, 17, 2) and sc.shape == (10, 17)
    np.testing.assert_allclose(err[:, 5:], 1., atol=1e-5)
    np.testing.assert_allclose(sc[:, 5:], 0.8)
    assert ErrorModel.empirical(17).source == 'empirical'


def test_prior_pretraining_and_fine_tuning_run_the_head_losses():
    priors = load_pose_priors(sources=('lsp14', ))
    assert len(priors['keypoints']) == 2000 and priors['visible'][:, 5:].all()
    model = lite_model()
    head, r = model.head, model.head.refiner
    em = ErrorModel.empirical(17, SIZE)
    batches = lambda e: prior_batches(priors, r, em, SIZE, batch_size=128,  # noqa: E731
                                      seed=e)
    inp, tgt = next(batches(0))
    assert tgt.mask.any() and not tgt.mask[:, r.chains.names.index('left_head')].any()
    hist = fit(head, batches, 2, 'pretrain', lr=3e-3)
    assert hist[-1]['loss_phi'] < hist[0]['loss_phi']
    before = {k: v.clone() for k, v in r.corr.state_dict().items()}
    hist = fit(head, batches, 1, 'correct')
    assert np.isfinite(hist[0]['loss_corr'])
    assert any(not torch.equal(v, before[k]) for k, v in r.corr.state_dict().items())
    # fine-tuning / evaluation on (here: fabricated) base predictions
    gt = skeleton(64, seed=8)
    pts = dict(pred=gt + torch.randn(64, 17, 2) * 0.5, scores=torch.rand(64, 17),
               gt=gt, weight=torch.ones(64, 17))
    fit(head, lambda e: point_batches(pts, r, SIZE, 32, seed=e), 1, 'multi_round')
    res = evaluate_points(r, point_batches(pts, r, SIZE, 32, seed=None), SIZE)
    assert res['chains'] == 64 * r.chains.num_chains
    assert res['refined_px'] <= res['base_px'] + 1e-6 or res['use_base_frac'] < 1
