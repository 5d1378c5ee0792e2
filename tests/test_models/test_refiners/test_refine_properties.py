"""Property tests (hypothesis) of SCAIHead's refinement on random heatmaps (issue 14).

A tiny head with random (non-trivial) Φ, Γ and C; heatmaps mix Gaussian people, noise,
negative, huge, all-zero and partly non-finite instances.
"""
import numpy as np
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mmpose.registry import MODELS
from mmpose.utils import register_all_modules
from mmpose_scai.tta import TestTimeAdapter
from mmpose_scai.models.utils.heatmaps import render_gaussians

register_all_modules(init_default_scope=True)
W, H, STRIDE = 12, 16, 4
# derandomized (the same examples every run) and no shrinking: a failure is reported at
# once with its (reproducible) example instead of minutes of shrinking on 2 cores
SETTINGS = settings(max_examples=20, deadline=None, derandomize=True,
                    phases=(Phase.explicit, Phase.reuse, Phase.generate),
                    suppress_health_check=[HealthCheck.too_slow])


def tiny_head():
    torch.manual_seed(0)
    net = dict(type='ChainConvNet', width=4, dilations=(1, ), context_channels=0)
    head = MODELS.build(dict(
        type='SCAIHead',
        base_head=dict(type='HeatmapHead', in_channels=8, out_channels=17,
                       deconv_out_channels=(),
                       decoder=dict(type='MSRAHeatmap', input_size=(W * STRIDE, H * STRIDE),
                                    heatmap_size=(W, H), sigma=2)),
        refiner=dict(phi=net, gamma=net, corr=dict(net, dilations=(1, 2)),
                     correct_slots=('C', 'D'))))
    for p in head.refiner.parameters():  # C's output layer starts at zero: randomize all
        torch.nn.init.normal_(p, std=0.3)
    head.chain_labelled.fill_(1)
    return head.eval()


HEAD = tiny_head()
KINDS = ('people', 'noise', 'negative', 'huge', 'zero', 'nan', 'inf')


@st.composite
def heatmaps(draw):
    """Tensor[B, 17, H, W] with B in 1..3, each instance of a drawn kind."""
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    out = []
    for kind in kinds:
        coords = torch.rand(17, 2, generator=g) * torch.tensor([W - 1., H - 1.])
        hm = render_gaussians(coords, torch.rand(17, generator=g), (W, H), 2.)
        if kind == 'noise':
            hm = hm + 0.3 * torch.rand(hm.shape, generator=g)
        elif kind == 'negative':
            hm = hm - torch.rand(hm.shape, generator=g)
        elif kind == 'huge':
            hm = hm * 1e4
        elif kind == 'zero':
            hm = torch.zeros_like(hm)
        elif kind in ('nan', 'inf'):
            bad = torch.rand(17, generator=g) < 0.3
            hm[bad, :2, :2] = float(kind) * (-1 if kind == 'inf' and bad.sum() % 2 else 1)
        out.append(hm)
    return torch.stack(out)


def channel_finite(hm):
    return torch.isfinite(hm).flatten(2).all(-1)


@SETTINGS
@given(hm=heatmaps(), rounds=st.integers(0, 3))
def test_refine_shapes_finite_and_safeguard(hm, rounds):
    with torch.no_grad():
        refined, err, stats = HEAD.refine(hm, None, dict(rounds=rounds, tol=0.))
    b, g = hm.shape[0], HEAD.chains.num_chains
    assert refined.shape == hm.shape and err.shape == (b, g)
    finite = channel_finite(hm)
    assert torch.equal(channel_finite(refined), finite)  # nothing new is non-finite
    valid = torch.isfinite(err)
    inp = HEAD.refiner.prepare(hm, None, HEAD.enabled_chains())
    assert torch.equal(valid, inp.valid)
    # the per-instance safeguard: never above the base heatmaps' own E_s
    if 'E_base' in stats:
        assert (err[valid] <= stats['E_base'][valid] + 1e-6).all()
    # keypoints of no valid chain are the base heatmaps, bit for bit
    touched = (HEAD.chains.keypoint_chain_matrix('CD') > 0).float() @ valid.T.float()
    untouched = (touched.T == 0)
    torch.testing.assert_close(refined[untouched], hm[untouched], equal_nan=True,
                               rtol=0, atol=0)


@SETTINGS
@given(hm=heatmaps())
def test_decoded_keypoints_inside_the_heatmap(hm):
    b = hm.shape[0]
    HEAD.base_forward = lambda feats: (hm.clone(), None)
    try:
        with torch.no_grad():
            preds = HEAD.predict((torch.zeros(b, 8, H, W), ), [], dict(rounds=2))
    finally:
        del HEAD.base_forward
    centre = np.array([W * STRIDE, H * STRIDE]) / 2
    finite = channel_finite(hm).numpy()
    for p, ok in zip(preds, finite):
        kpt, score = p.keypoints[0], p.keypoint_scores[0]
        assert kpt.shape == (17, 2) and np.isfinite(kpt).all() and np.isfinite(score).all()
        assert (score[~ok] == 0).all() and (kpt[~ok] == centre).all()
        pos = score > 0  # a peak: inside the heatmap (MSRA shifts by <= 0.25 px)
        lo, hi = -0.25 * STRIDE, (np.array([W, H]) - 0.75) * STRIDE
        assert ((kpt[pos] >= lo) & (kpt[pos] <= hi)).all()
        # no peak: the codec's "no maximum" location (-1 px), or the masked centre
        assert np.isin(kpt[~pos], [-STRIDE, *centre]).all()
        assert p.keypoint_self_errors.shape == (1, 17)


@settings(SETTINGS, max_examples=12)
@given(hm=heatmaps(), steps=st.integers(1, 3), lr=st.floats(1e-4, 1e6),
       optimizer=st.sampled_from(['adam', 'sgd']), unit=st.sampled_from(['batch',
                                                                           'instance']))
def test_adaptation_never_raises_E_s(hm, steps, lr, optimizer, unit):
    trained = {k: v.clone() for k, v in HEAD.refiner.corr.state_dict().items()}
    inp = HEAD.refiner.prepare(hm, None, HEAD.enabled_chains())
    with torch.no_grad():
        _, plain_err, plain = HEAD.refiner.refine(inp, 1, 1e-3)
        adapter = TestTimeAdapter(steps=steps, lr=lr, optimizer=optimizer, unit=unit,
                                  select_quantile=None, early_stop=False)
        state, err, stats = adapter.refine(HEAD.refiner, inp, 1, 1e-3)
    v = inp.valid
    assert (err[v] <= plain_err[v]).all() and (err[v] <= plain['E_base'][v] + 1e-6).all()
    assert all(torch.isfinite(getattr(state, s)).all() for s in 'BCD')
    row = adapter.history[-1]
    assert row['fallbacks'] == (stats['tta_selected'] & ~stats['tta_accepted']).sum()
    for k, w in HEAD.refiner.corr.state_dict().items():
        assert torch.equal(w, trained[k])
