"""Scoring of one prediction set and the E_s analyses (issue 11, items 4 and 5)."""
from typing import Dict, Optional, Sequence

import numpy as np

from .metrics import (DISTAL_JOINTS, LIMB_JOINTS, batch_correlation, keypoint_summary,
                      normalized_errors, pearson, selection_report, spearman, torso_size)


def instance_errors(pred: np.ndarray, meta: dict, thr: float = 0.2) -> Dict[str, np.ndarray]:
    """Per-instance truth: normalised keypoint errors and summaries.

    Returns:
        dict: ``err`` (ndarray[N, K], ÷ torso, NaN where unlabelled or no torso),
        ``distal`` (ndarray[N], mean over labelled wrists/ankles), ``acc``
        (ndarray[N], PCK@thr over the labelled limb joints).
    """
    gt, vis = meta['gt_keypoints'], meta['gt_visible']
    err = normalized_errors(pred, gt, vis, torso_size(gt, vis))
    with np.errstate(all='ignore'):
        d = err[:, list(DISTAL_JOINTS)]
        distal = np.where(np.isfinite(d).any(1), np.nanmean(np.where(np.isfinite(d), d,
                                                                      np.nan), 1), np.nan)
        limb = err[:, list(LIMB_JOINTS)]
        fin = np.isfinite(limb)
        acc = np.where(fin.any(1), (np.where(fin, limb, np.inf) <= thr).sum(1)
                       / np.maximum(fin.sum(1), 1), np.nan)
    return dict(err=err, distal=distal, acc=acc)


def chain_mean(values: np.ndarray) -> np.ndarray:
    """Per-instance mean over chains of ndarray[N, G] (NaN where none is finite)."""
    with np.errstate(all='ignore'):
        fin = np.isfinite(values)
        return np.where(fin.any(1), np.nansum(np.where(fin, values, 0), 1)
                        / np.maximum(fin.sum(1), 1), np.nan)


def signal_report(es: np.ndarray, pred: np.ndarray, scores: np.ndarray, meta: dict,
                  distal_index: np.ndarray, batch_size: int = 32, seed: int = 0,
                  names: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """How well E_s tracks the true error of the predictions it describes.

    Args:
        es (ndarray[N, G]): E_s per chain (NaN: chain not refined).
        pred (ndarray[N, K, 2]), scores (ndarray[N, K]): The predictions.
        meta (dict): Cache meta (ground truth).
        distal_index (ndarray[G]): Keypoint index of each chain's D.
        names (Sequence[str], optional): Chain names; given, ``per_chain`` holds the
            two Spearman correlations of every chain with a labelled distal error.

    Returns:
        dict: ``batch_r_err`` / ``batch_r_acc``: Pearson r of the per-batch mean E_s
        with the per-batch mean distal error / PCK@0.2 (random batches of
        ``batch_size``, seeded); ``inst_r_err`` / ``inst_r_acc``: the same per instance;
        ``chain_spearman_es`` / ``chain_spearman_conf``: Spearman of E_s and of
        (1 − keypoint score) with the normalised error of the chain's D, per instance
        and chain; ``n_inst`` and ``n_chain``.
    """
    truth = instance_errors(pred, meta)
    e_inst = chain_mean(es)
    ok = np.isfinite(e_inst) & np.isfinite(truth['distal'])
    d_err = truth['err'][:, distal_index]  # [N, G]
    conf = 1 - scores[:, distal_index]
    fin = np.isfinite(es) & np.isfinite(d_err)
    out = dict(
        batch_r_err=batch_correlation(e_inst[ok], truth['distal'][ok], batch_size, seed),
        batch_r_acc=batch_correlation(e_inst[ok], truth['acc'][ok], batch_size, seed),
        inst_r_err=pearson(e_inst, truth['distal']),
        inst_r_acc=pearson(e_inst, truth['acc']),
        chain_spearman_es=spearman(es[fin], d_err[fin]),
        chain_spearman_conf=spearman(conf[fin], d_err[fin]),
        chain_pearson_es=pearson(es[fin], d_err[fin]),
        n_inst=int(ok.sum()), n_chain=int(fin.sum()))
    if names is not None:
        out['per_chain'] = {
            name: dict(spearman_es=spearman(es[fin[:, g], g], d_err[fin[:, g], g]),
                       spearman_conf=spearman(conf[fin[:, g], g], d_err[fin[:, g], g]),
                       n=int(fin[:, g].sum()))
            for g, name in enumerate(names) if fin[:, g].sum() > 2}
    return out


def selection_analysis(base_pred: np.ndarray, corr_pred: np.ndarray, es_base: np.ndarray,
                       es_corr: np.ndarray, meta: dict, distal_index: np.ndarray,
                       thr: float = 0.2) -> Dict[str, float]:
    """Accept-if-E_s-falls vs never / always correcting vs the per-joint oracle, on the
    distal joint of every refinable chain (see :func:`~.metrics.selection_report`)."""
    eb = instance_errors(base_pred, meta)['err'][:, distal_index]
    ec = instance_errors(corr_pred, meta)['err'][:, distal_index]
    return selection_report(eb, ec, es_base, es_corr, thr)


def score_keypoints(pred: np.ndarray, meta: dict,
                    extra: Optional[Dict[str, float]] = None) -> Dict[str, float]:
    """PCK@0.2 (limb and distal joints) and distal error of one prediction set."""
    out = keypoint_summary(pred, meta['gt_keypoints'], meta['gt_visible'])
    out.update(extra or {})
    return out
