"""SCAI variants evaluated on cached base heatmaps (the backbone never re-runs).

A :class:`Variant` names one row of the report: which heatmaps (plain or flip-averaged),
whether SCAI refines them, with how many rounds, from which start, and which test-time
adapter. :func:`run_variant` drives :meth:`SCAIHead.refine` over the cache in test
batches (dataset order, ``batch_size`` 32 by default: the adaptation batch) and
:func:`plain_correction` gives the "always correct" alternative used by the
selection analysis.
"""
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, Optional

import numpy as np
import torch

from mmpose_scai.models.losses import masked_mean  # noqa: F401  (re-exported for scripts)


@dataclass
class Variant:
    """One evaluated configuration.

    Attributes:
        name (str): Row label.
        model (str): Which trained SCAI model (key of the pipeline's models; ``'base'``
            for rows that only decode the base heatmaps).
        flip (bool): Use the flip-averaged base heatmaps.
        refine (bool): Apply SCAI (False: the base heatmaps, decoded).
        rounds (int): Correction rounds (test_cfg ``rounds``).
        tol (float): Stop tolerance (test_cfg ``tol``).
        start (str, optional): Override the refiner's start (``'phi'`` / ``'base'``).
        tta (dict, optional): ``TestTimeAdapter.from_cfg`` options (None: no TTA).
        note (str): What the row tests.
        extra (dict): Further switches: ``plain`` (always correct), ``splits`` (only
            these splits), ``refiner`` (refiner attributes set for this row only, e.g.
            ``dict(max_distal_score=0.3)``), ``rows`` (a key of
            ``Pipeline.row_roots``: where the row is cached).
    """
    name: str
    model: str = 'scai'
    flip: bool = False
    refine: bool = True
    rounds: int = 1
    tol: float = 1e-3
    start: Optional[str] = None
    tta: Optional[dict] = None
    note: str = ''
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _heatmaps(cache: dict, flip: bool) -> torch.Tensor:
    if flip and cache.get('heatmaps_flip') is None:
        raise ValueError('this cache was made without the flip pass')
    return cache['heatmaps_flip'] if flip else cache['heatmaps']


def run_variant(head, cache: dict, variant: Variant, batch_size: int = 32) -> dict:
    """Refine the cached heatmaps of one split with ``variant``.

    Args:
        head: A trained ``SCAIHead`` (eval mode; heatmap or lite refiner); unused
            where ``variant.refine`` is False.
        cache (dict): From :func:`~.cache.cache_split`.
        variant (Variant): The configuration.
        batch_size (int): Test batch = adaptation batch.

    Returns:
        dict: ``heatmaps`` (Tensor[N, K, h, w]) and, where SCAI runs, ``E_s``
        (ndarray[N, G], NaN for chains not refined), ``E_base`` (ndarray[N, G], Γ on
        the base chain), ``use_base`` / ``valid`` (bool ndarray[N, G]),
        ``tta_accepted`` (bool ndarray[N, G] or None), ``tta_history`` and ``seconds``.
    """
    heatmaps = _heatmaps(cache, variant.flip)
    if not variant.refine:
        return dict(heatmaps=heatmaps, seconds=0.0)
    from mmpose_scai.tta import TestTimeAdapter

    refiner = head.refiner
    saved_start = refiner.start_mode
    overrides = dict(variant.extra.get('refiner') or {})
    saved = {k: getattr(refiner, k) for k in overrides}
    if variant.start is not None:
        refiner.start_mode = variant.start
    for k, v in overrides.items():
        setattr(refiner, k, v)
    head.adapter = TestTimeAdapter.from_cfg(variant.tta) if variant.tta else None
    if head.adapter is not None:
        head.adapter.reset()
    test_cfg = dict(refine=True, rounds=variant.rounds, tol=variant.tol)
    outs = dict(heatmaps=[], E_s=[], E_base=[], use_base=[], valid=[], tta_accepted=[])
    t0 = time.perf_counter()
    try:
        head.eval()
        for i in range(0, len(heatmaps), batch_size):
            hm = heatmaps[i:i + batch_size].float()
            f = cache['feats'][i:i + batch_size].float()
            refined, err, stats = head.refine(hm, f, test_cfg)
            outs['heatmaps'].append(refined.detach())
            outs['E_s'].append(err.detach().cpu().numpy())
            outs['E_base'].append(stats['E_base'].detach().cpu().numpy())
            outs['use_base'].append(stats['use_base'].cpu().numpy())
            outs['valid'].append(torch.isfinite(err).cpu().numpy())
            if 'tta_accepted' in stats:
                outs['tta_accepted'].append(stats['tta_accepted'].cpu().numpy())
    finally:
        refiner.start_mode = saved_start
        for k, v in saved.items():
            setattr(refiner, k, v)
        adapter, head.adapter = head.adapter, None
    res = {k: (torch.cat(v) if k == 'heatmaps' else np.concatenate(v)) if v else None
           for k, v in outs.items()}
    res['seconds'] = time.perf_counter() - t0
    res['tta_history'] = list(adapter.history) if adapter is not None else []
    return res


@torch.no_grad()
def plain_correction(head, cache: dict, flip: bool = False, rounds: int = 1,
                     batch_size: int = 256) -> dict:
    """"Always correct": ``rounds`` correction rounds from the refiner's start state,
    each one kept whatever its E_s, and no base candidate.

    Returns:
        dict: ``heatmaps`` (Tensor[N, K, h, w]; chains not refinable keep the base),
        ``E_s`` of the corrected chains and ``E_base`` of the base chains (ndarray[N, G]),
        ``valid`` (bool ndarray[N, G]) and ``anchor_norm`` (‖H_A‖₂ per chain, the scale
        of E_s).
    """
    refiner = head.refiner
    heatmaps = _heatmaps(cache, flip)
    hms, es, eb, vs, an = [], [], [], [], []
    head.eval()
    for i in range(0, len(heatmaps), batch_size):
        hm = heatmaps[i:i + batch_size].float()
        f = cache['feats'][i:i + batch_size].float()
        inp = refiner.prepare(hm, f, head.enabled_chains())
        e_base, _ = refiner.self_error(inp, inp.base)
        state = refiner.start(inp)
        err, fb = refiner.self_error(inp, state)
        for _ in range(rounds):
            state = refiner.correct(state, fb)
            err, fb = refiner.self_error(inp, state)
        hms.append(refiner.write_back(hm, state, inp.valid))
        nan = torch.full_like(err, float('nan'))
        es.append(torch.where(inp.valid, err, nan).numpy())
        eb.append(torch.where(inp.valid, e_base, nan).numpy())
        vs.append(inp.valid.numpy())
        norm = inp.anchor.flatten(2).pow(2).sum(-1).sqrt()
        an.append(torch.where(inp.valid, norm, nan).numpy())
    return dict(heatmaps=torch.cat(hms), E_s=np.concatenate(es), E_base=np.concatenate(eb),
                valid=np.concatenate(vs), anchor_norm=np.concatenate(an))


def chain_distal_index(head) -> np.ndarray:
    """LongTensor-like ndarray[G]: the keypoint index of each chain's distal slot D."""
    return head.chains.index[:, 3].cpu().numpy()


def chain_names(head) -> list:
    return list(head.chains.names)


def per_keypoint_errors(head, err: np.ndarray) -> np.ndarray:
    """Chain E_s (ndarray[N, G], NaN = not refined) spread to keypoints (mean)."""
    e = torch.as_tensor(err, dtype=torch.float32)
    return head.chains.per_keypoint(e, torch.isfinite(e)).cpu().numpy()


def summarize_tta(history: list) -> Dict[str, float]:
    """Mean of the adapter's per-batch statistics."""
    if not history:
        return {}
    return {k: float(np.mean([r[k] for r in history])) for k in history[0]}
