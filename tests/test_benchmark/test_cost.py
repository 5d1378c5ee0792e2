"""``benchmarks.cost``: peak memory, interleaved timing and the cost summary.

No timing thresholds: the tests check structure, counts and memory that a call must
(or must not) allocate, which holds on any machine load.
"""
import sys

import numpy as np
import pytest
import torch

from benchmarks.cost import (cost_summary, interleaved_seconds, peak_memory,
                              pipeline_closures, refinement_latency, worst_case)
from tests.test_models.builders import build, tiny_scai_cfg

linux_only = pytest.mark.skipif(not sys.platform.startswith('linux'),
                                reason='peak RSS is read from /proc')


@linux_only
def test_peak_memory_sees_a_transient_allocation():
    def allocate():
        a = np.ones(96 * 2**20, dtype=np.uint8)  # 96 MiB, touched, then freed
        return int(a[::4096].sum())

    big = peak_memory(allocate)
    small = peak_memory(lambda: sum(range(1000)))
    assert big['method'] in ('vmhwm_reset', 'ru_maxrss')
    assert big['peak_mib'] >= big['rss_mib']
    assert 80 <= big['delta_mib'] <= 200
    if big['method'] == 'vmhwm_reset':  # the reset hides the earlier 96 MiB peak
        assert small['delta_mib'] < 16


def test_interleaved_seconds_counts_and_order():
    calls = []
    fns = {'a': lambda: calls.append('a'), 'b': lambda: calls.append('b')}
    times = interleaved_seconds(fns, repeat=3, warmup=2)
    assert calls == ['a', 'b'] * 5
    assert set(times) == {'a', 'b'} and all(len(v) == 3 for v in times.values())
    assert all(t >= 0 for v in times.values() for t in v)


def test_worst_case_restores_the_head():
    model = build(tiny_scai_cfg(refiner=dict(min_anchor_score=0.3))).eval()
    head = model.head
    head.chain_labelled.zero_()
    with worst_case(model):
        assert bool((head.chain_labelled > 0).all())
        assert head.refiner.min_anchor_score == 0.
    assert not bool((head.chain_labelled > 0).any())
    assert head.refiner.min_anchor_score == 0.3


def test_pipeline_closures_match_the_head():
    model = build(tiny_scai_cfg()).eval()
    x = torch.rand(2, 3, 128, 96)
    with worst_case(model):
        fns = pipeline_closures(model, x, tta=dict())
        hm, _ = fns['base']()
        assert hm.shape == (2, 17, 32, 24)
        refined = fns['refine']()
        assert refined.shape == hm.shape and torch.isfinite(refined).all()
        assert torch.allclose(fns['scai'](), refined)
        assert fns['scai_tta']().shape == hm.shape
    assert model.head.adapter is None  # the adapter is only set during the call


def test_cost_summary_counts_the_refiner_only():
    model = build(tiny_scai_cfg()).eval()
    out = cost_summary(model, (2, 3, 128, 96), repeat=2, tta=dict(), flops_batch=None)
    n_refiner = sum(p.numel() for p in model.head.refiner.parameters())
    assert out['refine_params'] == n_refiner
    assert out['base_params'] + n_refiner == sum(p.numel() for p in model.parameters())
    assert out['ratio_params'] == pytest.approx(n_refiner / out['base_params'])
    assert out['base_flops'] > 0 and out['refine_flops'] > 0
    assert out['ratio_flops'] == pytest.approx(out['refine_flops'] / out['base_flops'])
    assert {len(v) for v in out['times'].values()} == {2}
    assert set(out['times']) == {'base', 'main', 'tta'} and out['others'] == {}
    assert out['ratio_seconds'] > 0 and out['tta_ratio_seconds'] > 0
    # FLOPs traced at batch 1 and scaled equal those traced at the full batch
    one = cost_summary(model, (2, 3, 128, 96), repeat=1, flops_batch=1)
    assert one['base_flops'] == out['base_flops']
    assert one['refine_flops'] == out['refine_flops']
    assert 'tta_seconds' not in one


def test_cost_summary_swaps_in_other_refiners():
    model = build(tiny_scai_cfg()).eval()
    lite = build(tiny_scai_cfg(refiner=dict(
        type='SCAILiteRefiner', hidden=16, depth=1, corr_depth=1,
        min_anchor_score=0.2))).head.refiner
    main = model.head.refiner
    out = cost_summary(model, (2, 3, 128, 96), repeat=2, others=dict(lite=lite))
    assert model.head.refiner is main and lite.min_anchor_score == 0.2
    got = out['others']['lite']
    assert got['refine_params'] == sum(p.numel() for p in lite.parameters())
    assert got['refine_params'] != out['refine_params']
    assert got['refine_flops'] > 0 and got['ratio_seconds'] > 0
    assert set(out['times']) == {'base', 'main', 'lite'}


def test_refinement_latency_still_reports_per_instance():
    model = build(tiny_scai_cfg()).eval()
    with torch.no_grad():
        hm, f = model.head.base_forward(model.extract_feat(torch.rand(3, 3, 128, 96)))
    out = refinement_latency(model.head, hm, f, repeat=2)
    assert out['batch'] == 3
    assert out['ms_per_instance'] == pytest.approx(out['ms_per_batch'] / 3)
