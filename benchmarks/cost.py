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


def _synchronize() -> None:
    """Wait for queued CUDA kernels, so that a wall time covers the work timed."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _seconds(fn: Callable, *args, repeat: int = 3,
             reduce: Callable[[List[float]], float] = min) -> float:
    """Seconds of ``fn(*args)`` after one warm-up: ``reduce`` of ``repeat`` timings."""
    fn(*args)  # warm-up
    times = []
    for _ in range(repeat):
        _synchronize()
        start = time.perf_counter()
        fn(*args)
        _synchronize()
        times.append(time.perf_counter() - start)
    return reduce(times)


@torch.no_grad()
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
            from mmpose_scai.tta import TestTimeAdapter
            out['tta_ms_per_batch'] = timed(TestTimeAdapter.from_cfg(tta))
            out['tta_ms_per_instance'] = out['tta_ms_per_batch'] / n
    finally:
        head.adapter = saved
    return out


# --------------------------------------------------------------------------- memory
_KIB = 1024.


def _status_kib(field: str) -> Optional[int]:
    """A ``Vm*`` field of ``/proc/self/status`` in KiB (None off Linux)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        return False
    return _status_kib('VmHWM') is not None


def _malloc_trim() -> None:
    """Hand the allocator's free heap pages back to the OS (glibc; no-op elsewhere)."""
    try:
        import ctypes
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory(fn: Callable, *args) -> Dict[str, object]:
    """Peak resident memory of one call ``fn(*args)``.

    The kernel's peak-RSS mark is reset right before the call (``/proc/self/clear_refs``),
    so the figure is that call's own peak, whatever ran earlier in the process. Where the
    reset is not allowed, ``resource.getrusage`` maxrss is used, which is only exact in
    a fresh process whose earlier peak is below the call's. Run it before any warm-up:
    memory the allocator kept from an earlier call is reused without raising RSS.

    Returns:
        dict: ``rss_mib`` (before the call), ``peak_mib`` (peak during it),
        ``delta_mib`` (peak − before, the call's working memory) and ``method``
        (``'vmhwm_reset'`` or ``'ru_maxrss'``).
    """
    import gc
    import resource
    gc.collect()
    _malloc_trim()
    before = _status_kib('VmRSS')
    method = 'vmhwm_reset' if _reset_peak() else 'ru_maxrss'
    if before is None:  # no procfs: ru_maxrss is in KiB on Linux, bytes on macOS
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn(*args)
    if method == 'vmhwm_reset':
        peak = _status_kib('VmHWM')
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(rss_mib=before / _KIB, peak_mib=peak / _KIB,
                delta_mib=max(peak - before, 0) / _KIB, method=method)


# ----------------------------------------------------------------- side-by-side timing
def interleaved_seconds(fns: Dict[str, Callable[[], object]], repeat: int = 5,
                        warmup: int = 1) -> Dict[str, List[float]]:
    """Wall times of several closures, run in turn ``repeat`` times after ``warmup``.

    Interleaving puts every closure under the same background load, so ratios of
    their medians stay meaningful on a shared machine.

    Returns:
        dict: name -> list of ``repeat`` timings in seconds.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            _synchronize()
            start = time.perf_counter()
            fn()
            _synchronize()
            times[k].append(time.perf_counter() - start)
    return times


class worst_case:
    """Context: every chain of a SCAI model refined (labelled, no anchor rejected)."""

    def __init__(self, model: nn.Module) -> None:
        self.head = model.head

    def __enter__(self) -> nn.Module:
        self.labelled = self.head.chain_labelled.clone()
        self.min_score = self.head.refiner.min_anchor_score
        self.head.chain_labelled.fill_(1)
        self.head.refiner.min_anchor_score = 0.
        return self.head

    def __exit__(self, *exc) -> None:
        self.head.chain_labelled.copy_(self.labelled)
        self.head.refiner.min_anchor_score = self.min_score


def pipeline_closures(model: nn.Module, x: torch.Tensor, rounds: int = 1,
                      tta: Optional[dict] = None) -> Dict[str, Callable[[], object]]:
    """Closures over one input batch: ``base`` (backbone, neck, base head), ``refine``
    (the refinement of cached base outputs) and ``scai`` (both), plus ``tta_refine`` and
    ``scai_tta`` with ``tta`` (``TestTimeAdapter.from_cfg`` options).

    Args:
        model: A top-down estimator with a ``SCAIHead``, in eval mode.
        x (Tensor[B, 3, H, W]): The input batch.
    """
    head = model.head
    cfg = dict(refine=True, rounds=rounds, tol=0.)
    with torch.no_grad():
        cached = head.base_forward(model.extract_feat(x))
    adapter = None
    if tta is not None:
        from mmpose_scai.tta import TestTimeAdapter
        adapter = TestTimeAdapter.from_cfg(tta)

    @torch.no_grad()
    def base():
        return head.base_forward(model.extract_feat(x))

    def refine_with(ad, hm, f):
        saved, head.adapter = head.adapter, ad
        try:
            if ad is None:
                with torch.no_grad():
                    return head.refine(hm, f, cfg)[0]
            return head.refine(hm, f, cfg)[0]
        finally:
            head.adapter = saved

    out = dict(base=base,
               refine=lambda: refine_with(None, *cached),
               scai=lambda: refine_with(None, *base()))
    if adapter is not None:
        out['tta_refine'] = lambda: refine_with(adapter, *cached)
        out['scai_tta'] = lambda: refine_with(adapter, *base())
    return out


def cost_summary(model: nn.Module, input_shape=(1, 3, 256, 192), repeat: int = 5,
                 tta: Optional[dict] = None, flops: bool = True,
                 flops_batch: Optional[int] = 1,
                 others: Optional[Dict[str, nn.Module]] = None) -> Dict[str, object]:
    """Params, FLOPs and side-by-side CPU time of a SCAI model against its own base.

    Worst case (every chain refined), one correction round. Timings are medians of
    ``repeat`` interleaved runs of the base forward, the refinement, (with ``tta``) the
    refinement with test-time adaptation and the refinement by each of ``others``
    (refiners swapped into the same head, e.g. a ``SCAILiteRefiner``), all on the
    same batch, so every ratio compares runs made under the same background load.

    Args:
        model: A top-down estimator with a ``SCAIHead``.
        input_shape: ``(B, 3, H, W)``.
        repeat: Timed runs of each closure after one warm-up.
        tta: ``TestTimeAdapter.from_cfg`` options (None: no TTA timing).
        flops: Count FLOPs (``FlopAnalyzer``).
        flops_batch: Trace FLOPs at this batch and scale them linearly to ``B``
            (convolutions and the refinement are per instance); None: at ``B``.
        others: Name -> alternative refiner for the same head.

    Returns:
        dict: ``base_params``, ``refine_params``, ``base_flops``/``refine_flops``
        (multiply-adds per batch), ``base_seconds``/``refine_seconds``/``tta_seconds``
        (medians per batch), ``ratio_*`` = refinement / base for params, flops and
        seconds (``ratio_seconds``: median of the per-repeat ratios),
        ``tta_ratio_seconds``, ``others`` (name -> the same ``refine_*``/``ratio_*``
        keys) and the raw ``times``.
    """
    model.eval()
    head = model.head
    main_refiner = head.refiner
    refiners = dict(main=main_refiner, **(others or {}))
    x = torch.rand(*input_shape, device=next(model.parameters()).device)
    batch = input_shape[0]
    fb = batch if flops_batch is None else min(flops_batch, batch)
    base_params = sum(p.numel() for n, p in model.named_parameters()
                      if not n.startswith('head.refiner.'))
    parts: Dict[str, Dict[str, float]] = {}
    fns: Dict[str, Callable[[], object]] = {}
    try:
        for name, refiner in refiners.items():
            head.refiner = refiner
            refiner.eval()
            with worst_case(model):
                part = dict(refine_params=sum(p.numel() for p in refiner.parameters()))
                if flops:
                    xb = x[:fb]
                    with torch.no_grad():
                        hm, f = head.base_forward(model.extract_feat(xb))
                    if name == 'main':
                        part['base_flops'] = _flops(
                            model, lambda inp: head.base_forward(model.extract_feat(inp)),
                            xb) * batch // fb
                    part['refine_flops'] = _flops(
                        model, lambda a, b: head.refine(a, b, dict(rounds=1, tol=0.))[0],
                        hm, f) * batch // fb
                parts[name] = part
            closures = pipeline_closures(model, x, tta=tta if name == 'main' else None)
            if name == 'main':
                fns['base'] = closures['base']
            fns[name] = _with_refiner(model, refiner, closures['refine'])
            if 'tta_refine' in closures:
                fns['tta'] = _with_refiner(model, refiner, closures['tta_refine'])
        times = interleaved_seconds(fns, repeat=repeat)
    finally:
        head.refiner = main_refiner
    base_t = times['base']

    def ratio(key: str) -> float:
        return median(r / b for r, b in zip(times[key], base_t))

    out: Dict[str, object] = dict(base_params=base_params, base_seconds=median(base_t))
    if flops:
        out['base_flops'] = parts['main']['base_flops']
    for name, part in parts.items():
        part['ratio_params'] = part['refine_params'] / base_params
        if flops:
            part['ratio_flops'] = part['refine_flops'] / out['base_flops']
        part['refine_seconds'] = median(times[name])
        part['ratio_seconds'] = ratio(name)
    out.update(parts.pop('main'))
    if 'tta' in times:
        out['tta_seconds'] = median(times['tta'])
        out['tta_ratio_seconds'] = ratio('tta')
    out['others'] = parts
    out['times'] = times
    return out


def _with_refiner(model: nn.Module, refiner: nn.Module, fn: Callable) -> Callable:
    """``fn`` run with ``refiner`` swapped into ``model.head`` (worst case)."""

    def run():
        saved, model.head.refiner = model.head.refiner, refiner
        try:
            with worst_case(model):
                return fn()
        finally:
            model.head.refiner = saved

    return run
