"""The SCAI refinement stage: chain heatmaps in, corrected heatmaps and E_s out.

:class:`SCAIRefiner` owns the networks Φ, Γ and C and the chain bookkeeping; it knows
nothing about MMPose data samples, so the head, the estimator and the test-time adapter
all drive the same few verbs: :meth:`prepare`, :meth:`start`, :meth:`correct`,
:meth:`self_error`, :meth:`refine` and :meth:`write_back`.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from torch import Tensor

from mmpose.registry import MODELS
from ...chains import KeypointChains
from ...structures import ChainInputs, ChainState
from ..utils.heatmaps import virtual_heatmaps
from .base_refiner import BaseRefiner


@MODELS.register_module()
class SCAIRefiner(BaseRefiner):
    """Φ, Γ and the correction networks on chain heatmaps (Tensor[B, G, h, w]).

    Args:
        feat_channels (int): Channels of the base feature map f (0: no context).
        phi, gamma, corr (dict): Configs of the networks (``ChainConvNet`` by default);
            ``in_channels``, ``num_chains`` and ``feat_channels`` are filled in.
        others: see :class:`BaseRefiner`.
    """

    def __init__(self,
                 chains: KeypointChains,
                 feat_channels: int = 0,
                 sigma: float = 2.0,
                 phi: dict = dict(type='ChainConvNet', context_channels=8),
                 gamma: dict = dict(type='ChainConvNet', context_channels=8),
                 corr: dict = dict(type='ChainConvNet', dilations=(1, 2, 4, 2, 1)),
                 correct_slots: Sequence[str] = ('D', ),
                 start: str = 'phi',
                 error_mode: str = 'l2',
                 min_anchor_score: float = 0.1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(chains, sigma, correct_slots, start, error_mode,
                         min_anchor_score, init_cfg)
        g = chains.num_chains

        def net(cfg: dict, in_channels: int, **kw) -> nn.Module:
            cfg = dict(cfg)
            if not cfg.get('context_channels'):
                cfg['context_channels'] = 0
            elif not feat_channels:
                cfg['context_channels'] = 0  # the base head exposes no feature map
            return MODELS.build(dict(cfg, in_channels=in_channels, num_chains=g,
                                     feat_channels=feat_channels, **kw))

        self.phi = net(phi, 3)
        self.gamma = net(gamma, 3)
        self.corr = nn.ModuleDict(
            {s: net(corr, 2, residual=True) for s in self.correct_slots})

    # ----------------------------------------------------------------- inputs
    def prepare(self, heatmaps: Tensor, feats: Optional[Tensor],
                enabled: Optional[Tensor] = None) -> ChainInputs:
        """Gather chain inputs from the base heatmaps (no gradient).

        Args:
            heatmaps (Tensor[B, K, h, w]): Base heatmaps (flip-averaged if flip test).
            feats (Tensor[B, C_f, H_f, W_f] | None): Base features f.
            enabled (BoolTensor[G] | None): Chains switched on (default: all).

        Returns:
            ChainInputs
        """
        with torch.no_grad():
            hm = heatmaps.detach().float()
            finite = torch.isfinite(hm).flatten(2).all(-1)  # [B, K]
            hm = torch.nan_to_num(hm, nan=0., posinf=0., neginf=0.)
            ext = self.chains.extend(hm, virtual_heatmaps(hm, self.chains, self.sigma))
            pairs = self.chains.virtual_pairs.to(hm.device)
            vfinite = finite[:, pairs].all(-1) if pairs.numel() else finite[:, :0]
            slots = self.chains.gather(ext, 'ABCD')
            chain_finite = self.chains.gather(
                self.chains.extend(finite, vfinite), 'ABCD').all(-1)
            anchor_ok = slots[:, :, 0].flatten(2).max(-1).values >= self.min_anchor_score
            valid = chain_finite & anchor_ok
            if enabled is not None:
                valid &= enabled.to(valid.device)[None]
            size = hm.shape[-2:]
            ctx = dict(phi=self.phi.encode_context(feats, size),
                       gamma=self.gamma.encode_context(feats, size))
        return ChainInputs(anchor=slots[:, :, 0],
                           base=ChainState(slots[:, :, 1], slots[:, :, 2], slots[:, :, 3]),
                           context=ctx, valid=valid)

    def targets(self, heatmaps: Tensor) -> Tensor:
        """Ground truth in the refiner's representation: target heatmaps
        (Tensor[B, K, h, w]) -> chain slots A, B, C, D (Tensor[B, G, 4, h, w])."""
        ext = virtual_heatmaps(heatmaps, self.chains, self.sigma)
        return self.chains.gather(self.chains.extend(heatmaps, ext), 'ABCD')

    def encode_context(self, feats: Optional[Tensor], size: Sequence[int]) -> dict:
        """Context of Φ and Γ with gradient (training)."""
        return dict(phi=self.phi.encode_context(feats, size),
                    gamma=self.gamma.encode_context(feats, size))

    # ------------------------------------------------------------------ verbs
    def predict_distal(self, inp: ChainInputs, anchor: Optional[Tensor] = None) -> Tensor:
        """Φ(A, B, C) -> Ĥ_D, Tensor[B, G, h, w]."""
        a = inp.anchor if anchor is None else anchor
        x = torch.stack([a, inp.base.B, inp.base.C], dim=2)
        return self.phi(x, inp.context['phi'])

    def reconstruct_anchor(self, inp: ChainInputs, state: ChainState) -> Tensor:
        """Γ(B, C, D) -> Ĥ_A, Tensor[B, G, h, w]."""
        x = torch.stack([state.B, state.C, state.D], dim=2)
        return self.gamma(x, inp.context['gamma'])

    def correct(self, state: ChainState, feedback: Tensor) -> ChainState:
        """One correction round: X <- X + C_X(X, e_s) for every corrected slot."""
        new = {}
        for s in 'BCD':
            x = getattr(state, s)
            new[s] = self.corr[s](torch.stack([x, feedback], 2)) if s in self.corr else x
        return ChainState(**new)

    def write_back(self, heatmaps: Tensor, state: ChainState, mask: Tensor) -> Tensor:
        """Scatter the corrected slot heatmaps into the K-channel heatmaps (a keypoint
        in several chains of one slot gets their mean)."""
        out = heatmaps
        for s in self.correct_slots:
            out = self.chains.scatter_mean(out, getattr(state, s).to(out.dtype), s, mask)
        return out
