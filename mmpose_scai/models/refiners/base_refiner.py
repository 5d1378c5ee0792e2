"""The refiner interface: the few verbs that the head, the estimator and the test-time
adapter drive, and the one iterative self-correction loop built on them."""
from abc import ABCMeta, abstractmethod
from dataclasses import replace
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor

from ...chains import KeypointChains
from ...structures import ChainInputs, ChainState
from ..losses import heatmap_distance


class BaseRefiner(BaseModule, metaclass=ABCMeta):
    """Φ (``phi``), Γ (``gamma``) and the correction networks (``corr``, one per
    corrected slot) over keypoint chains A → B → C → D.

    A subclass chooses the representation of a slot (a heatmap ``Tensor[B, G, h, w]`` or
    a point ``Tensor[B, G, 1, 2]``) and implements :meth:`prepare`, :meth:`targets`,
    :meth:`encode_context`, :meth:`predict_distal`, :meth:`reconstruct_anchor`,
    :meth:`correct` and :meth:`write_back`; the start state, E_s and the correction
    loop (:meth:`refine`) are shared.

    Args:
        chains (KeypointChains): The resolved chains.
        sigma (float): Gaussian sigma of the base codec.
        correct_slots (Sequence[str]): Slots with a correction network (``'D'``, and
            optionally ``'B'``, ``'C'``). Slot A is never corrected.
        start (str): Start state of D: ``'phi'`` (the paper: Φ's prediction) or
            ``'base'`` (the base model's own D).
        error_mode (str): Distance for E_s (``'l2'`` or ``'mse'``).
        min_anchor_score (float): An anchor whose heatmap maximum is below this is not
            usable; its chain keeps the base prediction.
    """

    def __init__(self,
                 chains: KeypointChains,
                 sigma: float = 2.0,
                 correct_slots: Sequence[str] = ('D', ),
                 start: str = 'phi',
                 error_mode: str = 'l2',
                 min_anchor_score: float = 0.1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        bad = set(correct_slots) - set('BCD')
        if bad or not correct_slots:
            raise ValueError(f'correct_slots must be a non-empty subset of B, C, D; got '
                             f'{tuple(correct_slots)}')
        if start not in ('phi', 'base'):
            raise ValueError(f'start must be "phi" or "base", got {start!r}')
        if not 0 <= min_anchor_score < 1:
            raise ValueError(f'min_anchor_score must be in [0, 1), got {min_anchor_score}')
        heatmap_distance(torch.zeros(1, 1), torch.zeros(1, 1), error_mode)  # validate
        self.chains = chains
        self.sigma = sigma
        self.correct_slots = tuple(s for s in 'BCD' if s in correct_slots)
        self.start_mode = start
        self.error_mode = error_mode
        self.min_anchor_score = min_anchor_score

    # ------------------------------------------------------------ representation
    @abstractmethod
    def prepare(self, heatmaps: Tensor, feats: Optional[Tensor],
                enabled: Optional[Tensor] = None) -> ChainInputs:
        """Chain inputs from base heatmaps (Tensor[B, K, h, w]) and features f."""

    @abstractmethod
    def targets(self, heatmaps: Tensor) -> Tensor:
        """Target heatmaps (Tensor[B, K, h, w]) -> slots A, B, C, D, Tensor[B, G, 4, ...]."""

    @abstractmethod
    def encode_context(self, feats: Optional[Tensor], size: Sequence[int]) -> dict:
        """Image context of Φ and Γ, with gradient (training)."""

    @abstractmethod
    def write_back(self, heatmaps: Tensor, state: ChainState, mask: Tensor) -> Tensor:
        """Write corrected chains into the base heatmaps.

        Args:
            heatmaps (Tensor[B, K, h, w]): Base heatmaps.
            state (ChainState): Corrected chains.
            mask (BoolTensor[B, G]): Chains to write; the others stay untouched.

        Returns:
            Tensor[B, K, h, w]
        """

    # --------------------------------------------------------------------- verbs
    @abstractmethod
    def predict_distal(self, inp: ChainInputs, anchor: Optional[Tensor] = None) -> Tensor:
        """Φ(A, B, C) -> D̂."""

    @abstractmethod
    def reconstruct_anchor(self, inp: ChainInputs, state: ChainState) -> Tensor:
        """Γ(B, C, D) -> Â."""

    @abstractmethod
    def correct(self, state: ChainState, feedback: Tensor) -> ChainState:
        """One correction round: X <- X + C_X(X, feedback) for every corrected slot."""

    def self_error(self, inp: ChainInputs, state: ChainState) -> Tuple[Tensor, Tensor]:
        """E_s = ‖Γ(B, C, D) − A‖ (Tensor[B, G]) and the feedback e_s = A − Â."""
        a_hat = self.reconstruct_anchor(inp, state)
        return heatmap_distance(a_hat, inp.anchor, self.error_mode), inp.anchor - a_hat

    def start(self, inp: ChainInputs) -> ChainState:
        """The state the correction rounds start from."""
        if self.start_mode == 'base':
            return inp.base
        return replace(inp.base, D=self.predict_distal(inp))

    def refine(self, inp: ChainInputs, rounds: int = 1, tol: float = 1e-3,
               init: Optional[Tuple[ChainState, Tensor, Tensor]] = None
               ) -> Tuple[ChainState, Tensor, Dict[str, Tensor]]:
        """Iterative self-correction (spec §7) with the base as a candidate.

        Per instance and chain a round is kept only where E_s falls, and the loop stops
        where the relative change is below ``tol`` or after ``rounds`` rounds. Finally
        the base's own chain is kept wherever its E_s is not larger.

        Args:
            inp (ChainInputs): From :meth:`prepare`.
            rounds (int): Maximum number of correction rounds.
            tol (float): Stop tolerance, relative to the start E_s.
            init (tuple, optional): A start ``(state, E_s, e_s)``; default :meth:`start`.

        Returns:
            tuple: the final ChainState, its E_s (Tensor[B, G]) and statistics
            (``E_base``, ``E_start``, ``rounds`` taken per chain, ``use_base``).
        """
        e_base, _ = self.self_error(inp, inp.base)
        if init is None:
            state = self.start(inp)
            err, fb = self.self_error(inp, state)
        else:
            state, err, fb = init
        e_start = err
        active = inp.valid.clone()
        taken = torch.zeros_like(err, dtype=torch.long)
        for _ in range(rounds):
            if not active.any():
                break
            cand = self.correct(state, fb)
            c_err, c_fb = self.self_error(inp, cand)
            better = active & (c_err < err)
            state = cand.where(better, state)
            fb = torch.where(better[..., None, None], c_fb, fb)
            active = better & ((err - c_err) > tol * e_start)
            err = torch.where(better, c_err, err)
            taken += better.long()
        use_base = ~inp.valid | (e_base <= err)
        state = inp.base.where(use_base, state)
        err = torch.where(use_base, e_base, err)
        return state, err, dict(E_base=e_base, E_start=e_start, rounds=taken,
                                use_base=use_base)
