"""SCAI losses on chain heatmaps (method spec §2 and §5)."""
from typing import Dict, Optional

import torch
import torch.nn as nn
from torch import Tensor

from mmpose.registry import MODELS


def heatmap_distance(pred: Tensor, target: Tensor, mode: str = 'l2') -> Tensor:
    """Per-heatmap distance.

    Args:
        pred, target (Tensor[..., h, w]): Heatmaps.
        mode (str): ``'l2'``: sqrt of the summed squared difference (the paper's
            ‖·‖₂); ``'mse'``: mean squared difference (MMPose's KeypointMSELoss scale).

    Returns:
        Tensor[...]
    """
    sq = (pred - target).pow(2).flatten(-2)
    if mode == 'l2':
        # the epsilon keeps the gradient finite where pred == target
        return (sq.sum(-1) + 1e-12).sqrt()
    if mode == 'mse':
        return sq.mean(-1)
    raise ValueError(f'Unknown heatmap distance {mode!r}; use "l2" or "mse".')


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over ``mask`` (0 when nothing is valid, still differentiable)."""
    w = mask.to(values.dtype)
    return (torch.nan_to_num(values) * w).sum() / w.sum().clamp(min=1)


@MODELS.register_module()
class ChainHeatmapLoss(nn.Module):
    """Distance between chain heatmaps, averaged over valid chains and instances.

    Args:
        mode (str): ``'l2'`` (default) or ``'mse'``, see :func:`heatmap_distance`.
        loss_weight (float): Multiplier.
    """

    def __init__(self, mode: str = 'l2', loss_weight: float = 1.0) -> None:
        super().__init__()
        heatmap_distance(torch.zeros(1, 1), torch.zeros(1, 1), mode)  # validate early
        self.mode = mode
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        """
        Args:
            pred, target (Tensor[B, G, h, w]): Chain heatmaps.
            mask (BoolTensor[B, G]): Chains that count.

        Returns:
            Tensor: scalar loss.
        """
        if not mask.any():
            return pred.flatten()[:0].sum()  # zero, keeps the graph, no gradient
        # index first, so masked (possibly non-finite) chains never reach the gradient
        return self.loss_weight * heatmap_distance(pred[mask], target[mask],
                                                   self.mode).mean()


@MODELS.register_module()
class CorrectionLoss(nn.Module):
    """Eq. 8: ``L_C = a·L⁰ + b·L¹ + λ·(L¹ − L²)``.

    L⁰ compares the corrected heatmaps with the truth, L¹ reconstructs A from the
    corrected chain and L² from the uncorrected one.

    Args:
        a, b, lam (float): The paper's weights (0.85, 0.65, 0.45).
        margin (float, optional): Hinge ``λ·max(0, L¹ − L² + margin)`` instead of the
            unbounded difference; use it where Γ is also stepped on this loss.
    """

    def __init__(self, a: float = 0.85, b: float = 0.65, lam: float = 0.45,
                 margin: Optional[float] = None) -> None:
        super().__init__()
        self.a, self.b, self.lam, self.margin = a, b, lam, margin

    def forward(self, l0: Tensor, l1: Tensor, l2: Tensor) -> Dict[str, Tensor]:
        """
        Args:
            l0, l1, l2 (Tensor): scalar terms L⁰, L¹, L².

        Returns:
            dict: ``loss_corr`` and the logged terms ``l0``, ``l1``, ``l2`` and
            ``l1_minus_l2`` (negative when the correction helps Γ explain A).
        """
        diff = raw = l1 - l2
        if self.margin is not None:
            diff = (diff + self.margin).clamp(min=0)
        loss = self.a * l0 + self.b * l1 + self.lam * diff
        return dict(loss_corr=loss, l0=l0.detach(), l1=l1.detach(), l2=l2.detach(),
                    l1_minus_l2=raw.detach())
