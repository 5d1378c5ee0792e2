"""SCAI-Lite: the prediction / fitness-feedback / correction triangle on chain coordinates.

:class:`SCAILiteRefiner` has exactly the verbs and dataclass contract of
:class:`~mmpose_scai.models.refiners.heatmap_refiner.SCAIRefiner` (``prepare``, ``start``, ``correct``,
``self_error``, ``refine``, ``write_back``, ``targets``, ``encode_context``), so that
:class:`~mmpose_scai.models.heads.scai_head.SCAIHead`, its losses (L_Φ, L_Γ, eq. 8), the staged
estimator and the one :class:`~mmpose_scai.tta.TestTimeAdapter` drive either mode.
Select it with ``SCAIHead(refiner=dict(type='SCAILiteRefiner', ...),
loss=dict(type='ChainHeatmapLoss'))`` (the default loss is already right, see below).

Representation. Every chain slot is a point stored as ``Tensor[B, G, 1, 2]``: (x, y) in
the heatmap frame, centred and divided by the frame's longer side (so both axes share
one unit and the instance box spans about ±0.5). A point is a 1×2 "map", so the
per-map distance of the heatmap mode (:func:`heatmap_distance` over the last two dims)
is exactly the Euclidean distance of two points, and :class:`ChainState`,
:class:`ChainInputs`, ``ChainHeatmapLoss`` and ``CorrectionLoss`` apply unchanged.

Φ, Γ and every C are small per-chain MLPs (:class:`ChainMLP`); the base's keypoint scores
(heatmap maxima) are optional extra inputs. The feedback of :meth:`self_error` is the
anchor error e_s = A − Â followed by the fixed conditioning of the chain (A, the base's
own D and the scores), ``Tensor[B, G, 1, 10]``, because C sees only the state and the
feedback; so C may also move D back toward the base's D when Φ's start is worse.
:meth:`write_back` renders the corrected keypoints as Gaussians (the codec's sigma, the
base heatmap's own maximum as amplitude) into the K-channel heatmaps, so the wrapped
head's codec decodes them as usual.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from mmpose.registry import MODELS
from ...chains import KeypointChains
from ...structures import ChainInputs, ChainState
from ..losses import heatmap_distance
from ..networks import ChainMLP  # noqa: F401  (registers the default networks)
from ..utils.heatmaps import heatmap_peaks, render_gaussians
from .base_refiner import BaseRefiner

#: Width of the feedback: e_s (2), the anchor A (2), the base's D (2) and the scores of
#: A, B, C, D (4).
FEEDBACK_DIM = 10


def normalize_points(xy: Tensor, size: Sequence[int]) -> Tensor:
    """Heatmap pixels (x, y) -> the lite frame: centred, divided by the longer side."""
    w, h = size
    centre = xy.new_tensor([w / 2., h / 2.])
    return (xy - centre) / float(max(w, h))


def denormalize_points(uv: Tensor, size: Sequence[int]) -> Tensor:
    """Inverse of :func:`normalize_points`."""
    w, h = size
    return uv * float(max(w, h)) + uv.new_tensor([w / 2., h / 2.])


@MODELS.register_module()
class SCAILiteRefiner(BaseRefiner):
    """Φ, Γ and C as small MLPs over chain coordinates (SCAI-Lite).

    Args:
        chains (KeypointChains): The resolved chains.
        feat_channels (int): Channels of the base feature map (unused: no image context).
        sigma (float): Gaussian sigma of the base codec, used by :meth:`write_back`.
        hidden (int): Hidden width of every MLP.
        depth (int): Hidden layers of Φ and Γ (C has ``corr_depth``).
        corr_depth (int): Hidden layers of each C.
        use_scores (bool): Feed the base's keypoint scores to Φ, Γ and C.
        input_scale (float): Coordinates are multiplied by this before the MLPs (and
            outputs divided by it), so that typical inputs are of order one.
        correct_slots (Sequence[str]): Slots with a correction network (``'D'`` and
            optionally ``'B'``, ``'C'``). Slot A is never corrected.
        start (str): ``'phi'`` (Φ's prediction of D) or ``'base'`` (the base's own D).
        error_mode (str): ``'l2'`` (Euclidean distance) or ``'mse'``.
        min_anchor_score (float): Chains whose anchor score (heatmap maximum) is below
            this keep the base prediction.
        max_distal_score (float, optional): Selective correction (ESCAPE-style): only
            chains whose base D score is below this are refined; the others keep the
            base. None (default): every chain. Chosen on a validation split.
    """

    def __init__(self,
                 chains: KeypointChains,
                 feat_channels: int = 0,
                 sigma: float = 2.0,
                 hidden: int = 64,
                 depth: int = 2,
                 corr_depth: int = 2,
                 use_scores: bool = True,
                 input_scale: float = 4.0,
                 correct_slots: Sequence[str] = ('D', ),
                 start: str = 'phi',
                 error_mode: str = 'l2',
                 min_anchor_score: float = 0.1,
                 max_distal_score: Optional[float] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(chains, sigma, correct_slots, start, error_mode,
                         min_anchor_score, init_cfg)
        self.use_scores = use_scores
        self.input_scale = float(input_scale)
        self.max_distal_score = max_distal_score
        g, ns = chains.num_chains, 3 if use_scores else 0
        # Φ: A, B−A, C−A (+ scores of A, B, C) -> D − C
        self.phi = ChainMLP(6 + ns, 2, g, hidden, depth)
        # Γ: B, C−B, D−B (+ scores of B, C, D) -> A − B
        self.gamma = ChainMLP(6 + ns, 2, g, hidden, depth)
        # C_X: A, B−A, C−A, D−A, base D − A, e_s (+ scores of A..D) -> ΔX; identity
        # untrained
        self.corr = nn.ModuleDict({
            s: ChainMLP(12 + (4 if use_scores else 0), 2, g, hidden, corr_depth,
                        zero_init=True)
            for s in self.correct_slots
        })

    # ----------------------------------------------------------------- inputs
    def _chain_points(self, coords: Tensor, size: Sequence[int]) -> Tensor:
        """Per-keypoint heatmap pixels [B, K, 2] -> chain points [B, G, 4, 1, 2]."""
        ext = self.chains.extend(coords, self._virtual(coords, 'mean'))
        return normalize_points(self.chains.gather(ext, 'ABCD'), size)[..., None, :]

    def _virtual(self, values: Tensor, how: str) -> Tensor:
        """Values of the virtual keypoints: mean (points) or min (scores) of their pair."""
        pairs = self.chains.virtual_pairs.to(values.device)
        if pairs.numel() == 0:
            return values[:, :0]
        v = values[:, pairs]  # [B, V, 2, ...]
        if v.dtype == torch.bool:
            return v.all(2)
        return v.mean(2) if how == 'mean' else v.min(2).values

    def points_to_inputs(self, coords: Tensor, scores: Tensor, size: Sequence[int],
                         enabled: Optional[Tensor] = None,
                         finite: Optional[Tensor] = None) -> ChainInputs:
        """Chain inputs from per-keypoint points (decoded heatmaps or pose priors).

        Args:
            coords (Tensor[B, K, 2]): (x, y) in heatmap pixels of a ``size`` frame.
            scores (Tensor[B, K]): keypoint scores in [0, 1].
            size (tuple): The frame (w, h).
            enabled (BoolTensor[G] | None): Chains switched on (default: all).
            finite (BoolTensor[B, K] | None): Usable keypoints (default: all).

        Returns:
            ChainInputs with points ``Tensor[B, G, 1, 2]`` and ``context['scores']``
            (Tensor[B, G, 4]: A, B, C, D).
        """
        if finite is None:
            finite = torch.ones(coords.shape[:2], dtype=torch.bool, device=coords.device)
        pts = self._chain_points(coords, size)
        ext_scores = self.chains.extend(scores, self._virtual(scores, 'min'))
        sc = self.chains.gather(ext_scores, 'ABCD').clamp(0, 1)
        ok = self.chains.gather(
            self.chains.extend(finite, self._virtual(finite, 'min')), 'ABCD').all(-1)
        valid = ok & (sc[:, :, 0] >= self.min_anchor_score)
        if self.max_distal_score is not None:
            valid &= sc[:, :, 3] < self.max_distal_score
        if enabled is not None:
            valid &= enabled.to(valid.device)[None]
        return ChainInputs(anchor=pts[:, :, 0],
                           base=ChainState(pts[:, :, 1], pts[:, :, 2], pts[:, :, 3]),
                           context=dict(scores=sc), valid=valid)

    def prepare(self, heatmaps: Tensor, feats: Optional[Tensor],
                enabled: Optional[Tensor] = None) -> ChainInputs:
        """Decode the base heatmaps' peaks into chain points (no gradient).

        Args:
            heatmaps (Tensor[B, K, h, w]): Base heatmaps (flip-averaged if flip test).
            feats: Ignored (SCAI-Lite uses no image context).
            enabled (BoolTensor[G] | None): Chains switched on (default: all).
        """
        with torch.no_grad():
            hm = heatmaps.detach().float()
            finite = torch.isfinite(hm).flatten(2).all(-1)
            hm = torch.nan_to_num(hm, nan=0., posinf=0., neginf=0.)
            coords, maxvals = heatmap_peaks(hm)
            return self.points_to_inputs(coords, maxvals, (hm.shape[-1], hm.shape[-2]),
                                         enabled, finite)

    def targets(self, heatmaps: Tensor) -> Tensor:
        """Ground-truth chain points from target heatmaps: Tensor[B, G, 4, 1, 2].

        The peaks of the codec's target Gaussians are decoded exactly by
        :func:`heatmap_peaks`; the virtual anchor is the midpoint of its pair.
        """
        coords, _ = heatmap_peaks(heatmaps.detach().float())
        return self._chain_points(coords, (heatmaps.shape[-1], heatmaps.shape[-2]))

    def encode_context(self, feats: Optional[Tensor], size: Sequence[int]) -> dict:
        """No image context; the scores stay in the inputs' context."""
        return {}

    # ------------------------------------------------------------------ verbs
    def _scores(self, inp: ChainInputs, slots: str) -> list:
        if not self.use_scores:
            return []
        sc = inp.context['scores']
        return [sc[:, :, 'ABCD'.index(s)].unsqueeze(-1) for s in slots]

    def predict_distal(self, inp: ChainInputs, anchor: Optional[Tensor] = None) -> Tensor:
        """Φ(A, B, C) -> D̂, Tensor[B, G, 1, 2]."""
        a = (inp.anchor if anchor is None else anchor)[:, :, 0]
        b, c = inp.base.B[:, :, 0], inp.base.C[:, :, 0]
        k = self.input_scale
        x = torch.cat([a * k, (b - a) * k, (c - a) * k] + self._scores(inp, 'ABC'), -1)
        return (c + self.phi(x) / k)[:, :, None]

    def reconstruct_anchor(self, inp: ChainInputs, state: ChainState) -> Tensor:
        """Γ(B, C, D) -> Â, Tensor[B, G, 1, 2]."""
        b, c, d = state.B[:, :, 0], state.C[:, :, 0], state.D[:, :, 0]
        k = self.input_scale
        x = torch.cat([b * k, (c - b) * k, (d - b) * k] + self._scores(inp, 'BCD'), -1)
        return (b + self.gamma(x) / k)[:, :, None]

    def self_error(self, inp: ChainInputs, state: ChainState) -> Tuple[Tensor, Tensor]:
        """E_s = ‖Â − A‖ (Tensor[B, G]) and the feedback (Tensor[B, G, 1, 10]):
        e_s = A − Â, then A, the base's D and the four scores."""
        a_hat = self.reconstruct_anchor(inp, state)
        err = heatmap_distance(a_hat, inp.anchor, self.error_mode)
        sc = inp.context['scores'].to(a_hat.dtype)[:, :, None]
        return err, torch.cat([inp.anchor - a_hat, inp.anchor.expand_as(a_hat),
                               inp.base.D.expand_as(a_hat), sc], -1)

    def correct(self, state: ChainState, feedback: Tensor) -> ChainState:
        """One correction round: X <- X + C_X(chain, e_s) for every corrected slot."""
        k = self.input_scale
        fb = feedback[:, :, 0]
        e, a, d_base, sc = fb[..., :2], fb[..., 2:4], fb[..., 4:6], fb[..., 6:]
        pts = [state.B[:, :, 0], state.C[:, :, 0], state.D[:, :, 0], d_base]
        x = torch.cat([a * k] + [(p - a) * k for p in pts] + [e * k]
                      + ([sc] if self.use_scores else []), -1)
        new = {}
        for s in 'BCD':
            p = getattr(state, s)
            new[s] = p + self.corr[s](x)[:, :, None] / k if s in self.corr else p
        return ChainState(**new)

    def write_back(self, heatmaps: Tensor, state: ChainState, mask: Tensor) -> Tensor:
        """Render the corrected points as Gaussians (the codec's sigma, the base
        heatmap's maximum as amplitude); a keypoint in several chains of one slot (the
        COCO nose) gets the mean point."""
        b, k, h, w = heatmaps.shape
        with torch.no_grad():
            coords, maxvals = heatmap_peaks(
                torch.nan_to_num(heatmaps.detach().float(), nan=0., posinf=0., neginf=0.))
        points = coords
        written = torch.zeros(b, k, dtype=coords.dtype, device=coords.device)
        ones = torch.ones(mask.shape, dtype=coords.dtype, device=coords.device)
        for s in self.correct_slots:
            new = denormalize_points(getattr(state, s)[:, :, 0].to(coords.dtype), (w, h))
            points = self.chains.scatter_mean(points, new, s, mask)
            written = self.chains.scatter_mean(written, ones, s, mask)
        rendered = render_gaussians(points, maxvals.clamp(min=0), (w, h), self.sigma)
        return torch.where(written[..., None, None] > 0, rendered.to(heatmaps.dtype),
                           heatmaps)
