"""Cost of the SCAI refinement next to its base model: parameters, FLOPs, CPU time."""
import time
from statistics import median
from typing import Callable, Dict, List, Optional

import torch
from mmengine.analysis import FlopAnalyzer
from torch import nn


class _Call(nn.Module):
    """Wraps a closure so that FlopAnalyzer can trace it."""

    def __init__(self, owner: nn.Module, fn: Callable) -> None:
        super().__init__()
        self.owner, self.fn = owner, fn

    def forward(self, *args):
        return self.fn(*args)


def _flops(owner: nn.Module, fn: Callable, *args) -> int:
    analyzer = FlopAnalyzer(_Call(owner, fn), args)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    return int(analyzer.total())


def _seconds(fn: Callable, *args, repeat: int = 3,
             reduce: Callable[[List[float]], float] = min) -> float:
    """Seconds of ``fn(*args)`` after one warm-up: ``reduce`` of ``repeat`` timings."""
    fn(*args)  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return reduce(times)


@torch.no_grad()
def refinement_cost(model: nn.Module, input_shape=(1, 3, 256, 192),
                    repeat: int = 3) -> Dict[str, float]:
    """Measure a SCAI top-down model side by side with its own base.

    Every chain is refined (all chains enabled, no anchor is rejected), so the figures
    are the worst case of one batch.

    Args:
        model: A top-down estimator whose head is a ``SCAIHead``.
        input_shape: ``(B, 3, H, W)`` of the input batch.
        repeat: Timing repetitions (the best is kept).

    Returns:
        dict: ``params``, ``flops`` (multiply-adds) and ``seconds`` of the base
        (``base_*``), of the refinement with one round (``refine_*``, from base
        heatmaps to refined heatmaps) and of each further round (``round_*``: one
        correction and one Γ pass), with their ratios to the base.
    """
    model.eval()
    head, refiner = model.head, model.head.refiner
    head.chain_labelled.fill_(1)
    min_score, refiner.min_anchor_score = refiner.min_anchor_score, 0.
    x = torch.rand(*input_shape)

    def base(inp):
        return head.base_forward(model.extract_feat(inp))

    heatmaps, f = base(x)

    def refine(hm, feat):
        return head.refine(hm, feat, dict(rounds=1, tol=0.))[0]

    inp = refiner.prepare(heatmaps, f, head.enabled_chains())
    state = refiner.start(inp)
    _, feedback = refiner.self_error(inp, state)

    def one_round(fb):
        return refiner.self_error(inp, refiner.correct(state, fb))[0]

    try:
        base_params = sum(p.numel() for n, p in model.named_parameters()
                          if not n.startswith('head.refiner.'))
        out = dict(
            base_params=base_params,
            refine_params=sum(p.numel() for p in refiner.parameters()),
            base_flops=_flops(model, base, x),
            round_params=sum(p.numel() for p in refiner.corr.parameters()),
            refine_flops=_flops(model, refine, heatmaps, f),
            round_flops=_flops(model, one_round, feedback),
            base_seconds=_seconds(base, x, repeat=repeat),
            refine_seconds=_seconds(refine, heatmaps, f, repeat=repeat),
            round_seconds=_seconds(one_round, feedback, repeat=repeat))
    finally:
        refiner.min_anchor_score = min_score
    for part in ('refine', 'round'):
        for k in ('params', 'flops', 'seconds'):
            out[f'{part}_ratio_{k}'] = out[f'{part}_{k}'] / out[f'base_{k}']
    return out


def refinement_latency(head: nn.Module, heatmaps: torch.Tensor,
                       feats: Optional[torch.Tensor] = None, repeat: int = 20,
                       rounds: int = 1, tta: Optional[dict] = None) -> Dict[str, float]:
    """CPU wall time of a SCAI head's refinement of one batch, excluding the base.

    Times ``head.refine`` (prepare, refine, write-back; heatmap or lite refiner) on the
    given base heatmaps, without and, with ``tta`` (``TestTimeAdapter.from_cfg``
    options, e.g. ``dict()`` for the default preset), with test-time adaptation. The
    head's adapter is restored afterwards.

    Args:
        head: A ``SCAIHead`` in eval mode.
        heatmaps (Tensor[B, K, h, w]): Base heatmaps of one batch (e.g. 32 instances).
        feats (Tensor, optional): The base feature map f (heatmap refiner).
        repeat (int): Timed repetitions after one warm-up (the median is reported).
        rounds (int): Correction rounds.
        tta (dict, optional): Adapter options; None: no TTA timing.

    Returns:
        dict: ``batch``, ``threads``, ``refined_frac`` (chains refined),
        ``ms_per_batch``/``ms_per_instance`` and, with ``tta``, ``tta_ms_per_batch``/
        ``tta_ms_per_instance`` (medians).
    """
    head.eval()
    cfg = dict(refine=True, rounds=rounds, tol=1e-3)
    saved = head.adapter

    def timed(adapter) -> float:
        head.adapter = adapter

        def run():
            if adapter is None:
                with torch.no_grad():
                    return head.refine(heatmaps, feats, cfg)
            return head.refine(heatmaps, feats, cfg)

        return _seconds(run, repeat=repeat, reduce=median) * 1e3

    try:
        with torch.no_grad():
            inp = head.refiner.prepare(heatmaps, feats, head.enabled_chains())
        n = heatmaps.shape[0]
        out = dict(batch=n, threads=torch.get_num_threads(),
                   refined_frac=inp.valid.float().mean().item())
        out['ms_per_batch'] = timed(None)
        out['ms_per_instance'] = out['ms_per_batch'] / n
        if tta is not None:
            from .adaptation import TestTimeAdapter
            out['tta_ms_per_batch'] = timed(TestTimeAdapter.from_cfg(tta))
            out['tta_ms_per_instance'] = out['tta_ms_per_batch'] / n
    finally:
        head.adapter = saved
    return out
