"""The checks around test-time adaptation, each a named step: which chains adapt
(:func:`select_chains`), how far C may move (:class:`TrustRegion`), when a carried C is
reset (:class:`DriftGuard`) and where the adapted result is kept (:func:`accept`)."""
from collections import deque
from statistics import median
from typing import Optional, Sequence

import torch
from torch import Tensor

from ..models.losses import masked_mean


def select_chains(err: Tensor, valid: Tensor, quantile: Optional[float] = None,
                  threshold: Optional[float] = None) -> Tensor:
    """BoolTensor[B, G]: the valid chains whose E_s (Tensor[B, G]) is above
    ``threshold``, else at least the batch's ``quantile``; all valid ones if neither."""
    if threshold is not None:
        return valid & (err > threshold)
    if quantile is not None and valid.any():
        return valid & (err >= torch.quantile(err[valid], quantile))
    return valid.clone()


def accept(adapted: Tensor, err: Tensor, selected: Tensor, rule: str) -> Tensor:
    """BoolTensor[B, G]: where the adapted result (E_s ``adapted``) replaces the
    non-adapted one (E_s ``err``): per chain where it is lower (``'instance'``), for all
    selected chains iff their mean is lower (``'batch'``, the paper), or always."""
    if rule == 'instance':
        return selected & (adapted < err)
    if rule == 'batch':
        return selected & (masked_mean(adapted, selected) < masked_mean(err, selected))
    return selected.clone()


def _norm(tensors: Sequence[Tensor]) -> Tensor:
    return torch.cat([t.flatten() for t in tensors]).norm()


class TrustRegion:
    """Keeps ``params`` within ``max_drift`` × ‖trained‖ (L2 over all of them) of their
    ``trained`` values; no bound when ``max_drift`` is None."""

    def __init__(self, params: Sequence[Tensor], trained: Sequence[Tensor],
                 max_drift: Optional[float]) -> None:
        self.params, self.trained, self.max_drift = params, trained, max_drift
        self.norm = _norm(trained)

    def drift(self) -> float:
        """The relative distance from the trained weights."""
        return (_norm([p - a for p, a in zip(self.params, self.trained)]) /
                self.norm).item()

    @torch.no_grad()
    def project(self) -> bool:
        """Pull the weights back onto the ball; whether they were outside it."""
        if self.max_drift is None:
            return False
        delta = _norm([p - a for p, a in zip(self.params, self.trained)])
        radius = self.max_drift * self.norm
        if not delta > radius:  # a non-finite delta is the divergence check's job
            return False
        for p, a in zip(self.params, self.trained):
            p.copy_(a + (p - a) * (radius / delta))
        return True


class DriftGuard:
    """Continual mode: a batch whose E_s before adaptation exceeds ``k`` × the running
    median of the last ``window`` batches means the carried C diverged; reset it.

    E_s of a useless reconstruction is about the anchor heatmap's own norm, so a batch
    far above the median signals a broken C rather than a hard batch.
    """

    def __init__(self, k: Optional[float], window: int) -> None:
        self.k = k
        self.recent = deque(maxlen=window)
        self.resets = 0

    def should_reset(self, e_s: float) -> bool:
        if self.k is None or len(self.recent) < 3 or e_s <= self.k * median(self.recent):
            return False
        self.resets += 1
        return True

    def update(self, e_s: float) -> None:
        if e_s == e_s and abs(e_s) != float('inf'):
            self.recent.append(e_s)

    def clear(self) -> None:
        self.recent.clear()
        self.resets = 0
