"""Data classes that SCAI's head, refiners, estimator and test-time adapter pass around.

Slots follow the chain A → B → C → D (proximal to distal); G is the number of chains and
each slot is a map ``Tensor[B, G, h, w]`` (heatmap refiner) or a point
``Tensor[B, G, 1, 2]`` (lite refiner).
"""
from dataclasses import dataclass, replace
from typing import Dict, Optional

import torch
from torch import Tensor


@dataclass
class ChainState:
    """Heatmaps of the correctable slots, each Tensor[B, G, h, w]."""
    B: Tensor
    C: Tensor
    D: Tensor

    def where(self, mask: Tensor, other: 'ChainState') -> 'ChainState':
        """Per chain: ``self`` where ``mask[B, G]`` else ``other``."""
        m = mask[..., None, None]
        return ChainState(*(torch.where(m, getattr(self, s), getattr(other, s))
                            for s in 'BCD'))

    def detach(self) -> 'ChainState':
        return ChainState(self.B.detach(), self.C.detach(), self.D.detach())


@dataclass
class ChainInputs:
    """What the frozen base gives for one batch; fixed during refinement.

    Attributes:
        anchor (Tensor[B, G, h, w]): H_A, the observed anchor heatmaps.
        base (ChainState): the base heatmaps H_B, H_C, H_D.
        context (dict): squeezed image context per network (``'phi'``, ``'gamma'``).
        valid (BoolTensor[B, G]): chains that are refined (enabled, finite, anchor usable).
    """
    anchor: Tensor
    base: ChainState
    context: Dict[str, Optional[Tensor]]
    valid: Tensor

    def subset(self, index: Tensor) -> 'ChainInputs':
        """The same inputs for the instances ``index`` only."""
        ctx = {k: (None if v is None else v[index]) for k, v in self.context.items()}
        base = ChainState(self.base.B[index], self.base.C[index], self.base.D[index])
        return replace(self, anchor=self.anchor[index], base=base, context=ctx,
                       valid=self.valid[index])


@dataclass
class ChainTargets:
    """Ground truth of a training batch: target heatmaps per slot and a loss mask."""
    A: Tensor
    B: Tensor
    C: Tensor
    D: Tensor
    mask: Tensor  # BoolTensor[B, G]: all four slots labelled and the chain refinable
