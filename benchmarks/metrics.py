"""Benchmark metrics on keypoint arrays: PCK, distal error, correlations, AP bootstrap.

Everything here is plain numpy on arrays in original image pixels, so each function can
be checked by hand on tiny inputs (``tests/test_benchmark/test_metrics.py``). The COCO
AP itself comes from MMPose's ``CocoMetric`` (:mod:`.coco_eval`); this module only
re-accumulates COCOeval's per-image matches for the bootstrap.
"""
from typing import Dict, Optional, Sequence

import numpy as np

#: COCO-17 indices (the LSPET files use the COCO-17 layout).
LEFT_SHOULDER, RIGHT_HIP = 5, 12
#: The 12 limb joints labelled in LSPET (shoulders .. ankles).
LIMB_JOINTS = tuple(range(5, 17))
#: Wrists and ankles: the distal joints D of the four limb chains.
DISTAL_JOINTS = (9, 10, 15, 16)


def torso_size(gt: np.ndarray, visible: np.ndarray, a: int = LEFT_SHOULDER,
               b: int = RIGHT_HIP) -> np.ndarray:
    """Torso size per instance: the distance from left shoulder to right hip (LSP).

    Args:
        gt (ndarray[N, K, 2]): Ground-truth keypoints.
        visible (ndarray[N, K]): > 0 where labelled.
        a, b (int): The two joints.

    Returns:
        ndarray[N]: NaN where either joint is unlabelled or the two coincide.
    """
    gt = np.asarray(gt, dtype=np.float64)
    vis = np.asarray(visible) > 0
    size = np.linalg.norm(gt[:, a] - gt[:, b], axis=-1)
    ok = vis[:, a] & vis[:, b] & (size > 0)
    return np.where(ok, size, np.nan)


def normalized_errors(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray,
                      norm: np.ndarray) -> np.ndarray:
    """L2 error of each keypoint divided by the instance's normaliser.

    Returns:
        ndarray[N, K]: NaN where the keypoint is unlabelled or the normaliser is NaN.
    """
    err = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64),
                         axis=-1)
    err = err / np.asarray(norm, np.float64)[:, None]
    return np.where(np.asarray(visible) > 0, err, np.nan)


def pck(err_norm: np.ndarray, joints: Sequence[int] = LIMB_JOINTS,
        thr: float = 0.2) -> float:
    """Fraction of the labelled ``joints`` within ``thr`` (normalised error)."""
    e = np.asarray(err_norm)[:, list(joints)]
    e = e[np.isfinite(e)]
    return float(np.mean(e <= thr)) if e.size else float('nan')


def mean_error(err_norm: np.ndarray, joints: Sequence[int] = DISTAL_JOINTS) -> float:
    """Mean normalised error over the labelled ``joints`` (all keypoints pooled)."""
    e = np.asarray(err_norm)[:, list(joints)]
    e = e[np.isfinite(e)]
    return float(np.mean(e)) if e.size else float('nan')


def keypoint_summary(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray,
                     thr: float = 0.2) -> Dict[str, float]:
    """PCK@thr (limb joints, distal joints) and the distal-joint error (÷ torso)."""
    err = normalized_errors(pred, gt, visible, torso_size(gt, visible))
    return dict(pck=pck(err, LIMB_JOINTS, thr), pck_distal=pck(err, DISTAL_JOINTS, thr),
                distal_err=mean_error(err, DISTAL_JOINTS),
                n_torso=int(np.isfinite(torso_size(gt, visible)).sum()))


# --------------------------------------------------------------- correlations
def _finite_pairs(x, y):
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def pearson(x, y) -> float:
    """Pearson r over the pairs where both are finite (NaN if < 3 or constant)."""
    x, y = _finite_pairs(x, y)
    if x.size < 3 or x.std() == 0 or y.std() == 0:
        return float('nan')
    return float(np.corrcoef(x, y)[0, 1])


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind='mergesort')
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    vals, inv = np.unique(x, return_inverse=True)
    sums = np.bincount(inv, weights=ranks)
    counts = np.bincount(inv)
    return (sums / counts)[inv]


def spearman(x, y) -> float:
    """Spearman rank correlation (Pearson r of average ranks) over finite pairs."""
    x, y = _finite_pairs(x, y)
    if x.size < 3:
        return float('nan')
    return pearson(rankdata(x), rankdata(y))


def batch_means(values: np.ndarray, batch_size: int = 32, seed: int = 0,
                order: Optional[np.ndarray] = None) -> np.ndarray:
    """Per-batch nan-means of per-instance values over random batches.

    The instances are shuffled with ``numpy.random.default_rng(seed)`` (or put in
    ``order``) and cut into consecutive batches of ``batch_size``; a last partial
    batch is dropped.

    Args:
        values (ndarray[N] or ndarray[N, M]): Per-instance values (NaN = missing).

    Returns:
        ndarray[N // batch_size] (or [N // batch_size, M]).
    """
    values = np.asarray(values, np.float64)
    n = len(values)
    if order is None:
        order = np.random.default_rng(seed).permutation(n)
    nb = n // batch_size
    v = values[order[:nb * batch_size]].reshape(nb, batch_size, *values.shape[1:])
    with np.errstate(all='ignore'):
        cnt = np.isfinite(v).sum(1)
        tot = np.nansum(v, axis=1)
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


def batch_correlation(x: np.ndarray, y: np.ndarray, batch_size: int = 32,
                      seed: int = 0) -> float:
    """Pearson r between the batch means of ``x`` and ``y`` over seeded random batches
    (the paper's per-batch correlation, without the dataset-order bias)."""
    order = np.random.default_rng(seed).permutation(len(x))
    return pearson(batch_means(x, batch_size, order=order),
                   batch_means(y, batch_size, order=order))


# ----------------------------------------------------------- selection rules
def selection_report(err_base: np.ndarray, err_corr: np.ndarray, es_base: np.ndarray,
                     es_corr: np.ndarray, thr: float = 0.2,
                     tie_tol: float = 1e-3) -> Dict[str, float]:
    """How well "accept the correction iff E_s falls" picks between two predictions.

    All arrays are per decision (e.g. per instance and chain, for the distal joint):
    the normalised true error of the base and of the corrected prediction, and the E_s
    of each. Decisions with a non-finite value are dropped.

    Returns:
        dict: for each policy ``never`` (base), ``always`` (corrected), ``rule`` and
        ``oracle`` (the better of the two per decision): mean error and PCK@thr; plus
        ``rule_acc``, the fraction of decisions where the rule picks the truly better
        prediction (ties count as right), ``tie_frac`` (errors within ``tie_tol``) and
        ``rule_acc_nontie`` (the accuracy on the other decisions), ``accept_frac``, ``n``.
    """
    arrs = [np.asarray(a, np.float64).ravel() for a in (err_base, err_corr, es_base,
                                                         es_corr)]
    ok = np.all([np.isfinite(a) for a in arrs], axis=0)
    eb, ec, sb, sc = (a[ok] for a in arrs)
    accept = sc < sb
    picks = dict(never=eb, always=ec, rule=np.where(accept, ec, eb),
                 oracle=np.minimum(eb, ec))
    out = dict(n=int(ok.sum()), accept_frac=float(accept.mean()) if ok.any() else np.nan)
    for name, e in picks.items():
        out[f'{name}_err'] = float(e.mean()) if e.size else float('nan')
        out[f'{name}_pck'] = float((e <= thr).mean()) if e.size else float('nan')
    right = np.where(accept, ec <= eb, eb <= ec)
    out['rule_acc'] = float(right.mean()) if ok.any() else float('nan')
    # decisions where the two predictions are (nearly) equally good are no test of the
    # rule: report their share and the rule's accuracy on the others
    tie = np.abs(eb - ec) <= tie_tol
    out['tie_frac'] = float(tie.mean()) if ok.any() else float('nan')
    out['rule_acc_nontie'] = (float(right[~tie].mean()) if (~tie).any()
                              else float('nan'))
    # accuracy of the trivial rules, for reference
    out['never_acc'] = float((eb <= ec).mean()) if ok.any() else float('nan')
    out['always_acc'] = float((ec <= eb).mean()) if ok.any() else float('nan')
    return out


# ------------------------------------------------------- AP from COCOeval matches
class MatchTable:
    """COCOeval's per-image matches (one category, one area range) as flat arrays, so
    that AP can be recomputed quickly for any multiset of the images.

    Args:
        entries: ``COCOeval.evalImgs`` entries, one per image (None: nothing there).
        max_det (int): ``params.maxDets[-1]`` (20 for keypoints).
    """

    def __init__(self, entries: Sequence[Optional[dict]], max_det: int = 20) -> None:
        self.num_images = len(entries)
        scores, dtm, dtig, owner, npig = [], [], [], [], np.zeros(len(entries), int)
        for i, e in enumerate(entries):
            if e is None:
                continue
            s = np.asarray(e['dtScores'][:max_det], np.float64)
            scores.append(s)
            dtm.append(np.asarray(e['dtMatches'])[:, :max_det])
            dtig.append(np.asarray(e['dtIgnore'])[:, :max_det].astype(bool))
            owner.append(np.full(len(s), i))
            npig[i] = np.count_nonzero(np.asarray(e['gtIgnore']).ravel() == 0)
        self.scores = np.concatenate(scores) if scores else np.zeros(0)
        self.owner = np.concatenate(owner) if owner else np.zeros(0, int)
        t = dtm[0].shape[0] if dtm else 10
        self.dtm = np.concatenate(dtm, 1) if dtm else np.zeros((t, 0))
        self.dtig = np.concatenate(dtig, 1) if dtig else np.zeros((t, 0), bool)
        self.npig = npig

    def ap(self, counts: Optional[np.ndarray] = None,
           rec_thrs: Optional[np.ndarray] = None) -> Dict[str, float]:
        """AP / AP50 / AP75 / AR with image ``i`` counted ``counts[i]`` times."""
        if rec_thrs is None:
            rec_thrs = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1,
                                   endpoint=True)
        if counts is None:
            counts = np.ones(self.num_images, dtype=int)
        counts = np.asarray(counts)
        nan = {'AP': float('nan'), 'AP .5': float('nan'), 'AP .75': float('nan'),
               'AR': float('nan')}
        npig = int((self.npig * counts).sum())
        if npig == 0:
            return nan
        # every detection repeated as often as its image is drawn, then COCOeval's
        # stable sort by score (with counts of 1 this is exactly COCOeval's order;
        # copies of one image are interleaved differently, which only matters for
        # exactly tied scores of different detections in one image)
        rep = np.repeat(np.arange(len(self.scores)), counts[self.owner])
        rep = rep[np.argsort(-self.scores[rep], kind='mergesort')]
        dtm, dtig = self.dtm[:, rep], self.dtig[:, rep]
        tps = np.logical_and(dtm >= 0, ~dtig)
        fps = np.logical_and(dtm < 0, ~dtig)
        tp_sum = np.cumsum(tps, axis=1).astype(np.float64)
        fp_sum = np.cumsum(fps, axis=1).astype(np.float64)
        T, R = tp_sum.shape[0], len(rec_thrs)
        precision = np.zeros((T, R))
        recall = np.zeros(T)
        for t in range(T):
            tp, fp = tp_sum[t], fp_sum[t]
            nd = len(tp)
            rc = tp / npig
            pr = tp / (fp + tp + np.spacing(1))
            recall[t] = rc[-1] if nd else 0
            if nd:
                pr = np.maximum.accumulate(pr[::-1])[::-1]  # monotone envelope
                idx = np.searchsorted(rc, rec_thrs, side='left')
                inside = idx < nd
                precision[t, inside] = pr[idx[inside]]
        return {'AP': float(precision.mean()), 'AP .5': float(precision[0].mean()),
                'AP .75': float(precision[5].mean()) if T > 5 else float('nan'),
                'AR': float(recall.mean())}


def ap_from_matches(entries: Sequence[Optional[dict]], counts: Optional[np.ndarray] = None,
                    rec_thrs: Optional[np.ndarray] = None, max_det: int = 20
                    ) -> Dict[str, float]:
    """COCO AP / AP50 / AP75 / AR from COCOeval's per-image matches (one category, one
    area range), as ``COCOeval.accumulate`` + ``summarize`` compute them; image ``i``
    counts ``counts[i]`` times (the bootstrap). See :class:`MatchTable`."""
    return MatchTable(entries, max_det).ap(counts, rec_thrs)


def _num_images(entries) -> int:
    return entries.num_images if isinstance(entries, MatchTable) else len(entries)


def bootstrap_ap_diff(entries_a, entries_b, n: int = 1000,
                      seed: int = 0, key: str = 'AP', level: float = 0.95,
                      max_det: int = 20) -> Dict[str, float]:
    """Paired bootstrap of ``AP(a) − AP(b)`` over images.

    ``entries_a`` and ``entries_b`` (``COCOeval.evalImgs`` entries or
    :class:`MatchTable`) must list the same images in the same order. Each resample draws the
    images with replacement (``numpy.random.default_rng(seed)``; the same resamples for
    every pair with the same seed and image count) and recomputes both APs.

    Returns:
        dict: ``diff`` (on the full set), ``lo``, ``hi`` (percentile interval),
        ``p_le0`` (fraction of resamples with a difference ≤ 0) and ``n``.
    """
    if _num_images(entries_a) != _num_images(entries_b):
        raise ValueError('bootstrap_ap_diff needs the same images on both sides')
    m = _num_images(entries_a)
    ta = entries_a if isinstance(entries_a, MatchTable) else MatchTable(entries_a, max_det)
    tb = entries_b if isinstance(entries_b, MatchTable) else MatchTable(entries_b, max_det)
    full = ta.ap()[key] - tb.ap()[key]
    rng = np.random.default_rng(seed)
    diffs = np.empty(n)
    for i in range(n):
        counts = np.bincount(rng.integers(0, m, m), minlength=m)
        diffs[i] = ta.ap(counts)[key] - tb.ap(counts)[key]
    diffs = diffs[np.isfinite(diffs)]
    a = (1 - level) / 2
    lo, hi = (np.quantile(diffs, [a, 1 - a]) if diffs.size else (np.nan, np.nan))
    return dict(diff=float(full), lo=float(lo), hi=float(hi),
                p_le0=float(np.mean(diffs <= 0)) if diffs.size else float('nan'),
                n=int(n))
