"""Test-time adaptation of the correction networks C (method spec §8).

:class:`TestTimeAdapter` is the one adaptation loop. The head calls :meth:`refine` in
place of :meth:`SCAIRefiner.refine` whenever an adapter is attached (by
:class:`SCAITTAHook` or by ``test_cfg=dict(tta=...)``). Per batch it

1. refines without adaptation (the reference result, which already includes the base
   heatmap as a candidate per chain);
2. selects the chains whose E_s is still high (all valid chains by default);
3. steps C for ``steps`` steps on the mean E_s of the corrected selected chains, with Φ,
   Γ and the base frozen (gradients are taken for C's parameters only), keeping the best
   state seen and stopping when E_s stops falling (``early_stop``) or diverges (a
   non-finite loss or gradient, or E_s above its value before adaptation); C never
   leaves a ball around its trained weights (``max_drift``): E_s alone can be lowered by
   corrections Γ merely finds easy, so the anchor bounds what a step can break;
4. refines again with the adapted C and keeps, per the safeguard, the adapted result only
   where it lowers E_s; every selected chain that keeps the non-adapted result is
   counted as a fallback (``tta_fallbacks``, ``tta_diverged`` in the MessageHub);
5. puts C's trained weights back (always: also on an exception). Continual mode keeps its
   carried weights in the adapter, never in the model.
"""
import copy
import math
import time
from collections import deque
from contextlib import contextmanager
from statistics import median
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from torch import Tensor

from ..models.losses import masked_mean
from ..models.refiners import SCAIRefiner
from ..structures import ChainInputs, ChainState

#: Named settings, merged under the user's options by :meth:`TestTimeAdapter.from_cfg`.
#: ``default`` (the constructor's defaults) meets the cost goal of spec §4: two Adam
#: steps on the worse half of the chains. ``paper`` is the paper's schedule (spec §8:
#: 20 steps, lr 0.013, x0.96 per step, 20 correction rounds, per-batch acceptance).
#: ``configs/_base_/scai_tta.py`` and ``scai_tta_paper.py`` name them (``preset=...``).
PRESETS = dict(
    default=dict(),
    paper=dict(steps=20, lr=0.013, lr_decay=0.96, optimizer='adam', safeguard='batch',
               select_quantile=None, early_stop=True, rounds=20, max_drift=None),
)


def _choice(name: str, value, options) -> None:
    if value not in options:
        raise ValueError(f'TestTimeAdapter: {name} must be one of {options}, got {value!r}')


def _snapshot(module: torch.nn.Module) -> Dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class TestTimeAdapter:
    """Adapts C on each test batch by minimizing the self-referential error E_s.

    Args:
        steps (int): Gradient steps per batch (0: refinement only).
        lr (float): Learning rate of the first step.
        lr_decay (float): Factor applied to the lr after every step, in (0, 1].
        optimizer (str): ``'adam'`` or ``'sgd'`` (momentum 0.9).
        mode (str): ``'episodic'`` (reset C and the optimizer state every batch) or
            ``'continual'`` (carry both across batches, with the drift guard).
        unit (str): ``'batch'``: one C adapted on the batch's mean E_s (the paper);
            ``'instance'``: C adapted separately for each instance (ESCAPE-style), so
            that, with ``select_threshold``, a person's result does not depend on the
            other people in its batch.
        safeguard (str): ``'instance'``: per instance and chain the adapted result is kept
            only where its E_s is below the non-adapted result's (which is never above
            the base heatmap's own E_s); ``'batch'``: the paper's rule, all selected
            chains keep the adapted result iff their mean E_s falls; ``'none'``.
        select_quantile (float, optional): Adapt only the chains whose non-adapted E_s
            is at least this quantile of the batch's valid chains (default 0.5: the
            worse half; None with no threshold: every valid chain).
        select_threshold (float, optional): Adapt only the chains whose non-adapted E_s
            exceeds this value (e.g. calibrated on a validation split). At most one of
            the two selection options may be set; neither selects every valid chain.
        drift_k (float, optional): Continual mode: C is reset to its trained weights when
            a batch's E_s before adaptation exceeds ``drift_k`` times the running median
            of earlier batches (None: no guard). E_s of a useless reconstruction is
            about the anchor heatmap's own norm, so a batch far above 2x the median
            means C has diverged rather than that the batch is hard.
        drift_window (int): Batches in the running median.
        max_drift (float, optional): Trust region of C: after every step, C's weights
            are pulled back onto the ball ``||w - w_trained|| <= max_drift *
            ||w_trained||`` (L2 over all of C's parameters), as EATA anchors to the
            source weights. Lowering E_s does not prove a correction right (Γ can be
            fooled), so this bounds the damage of a too large lr or too many steps
            whatever E_s says. Default 0.05: about twice the drift the default preset
            reaches on the benchmark's validation split (0.028); None: no bound (the
            paper preset).
        early_stop (bool): Stop stepping as soon as E_s stops falling. Without it all
            steps run; the best state seen is kept either way.
        rounds (int, optional): Correction rounds after adapting; default: the head's
            ``test_cfg['rounds']``.
        scalar_prefix (str): Prefix of the MessageHub scalars (``'test/tta_'``; the hook
            sets ``'val/tta_'`` during validation so they reach that log).
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(self,
                 steps: int = 2,
                 lr: float = 1e-3,
                 lr_decay: float = 1.0,
                 optimizer: str = 'adam',
                 mode: str = 'episodic',
                 unit: str = 'batch',
                 safeguard: str = 'instance',
                 select_quantile: Optional[float] = 0.5,
                 select_threshold: Optional[float] = None,
                 drift_k: Optional[float] = 2.0,
                 drift_window: int = 50,
                 max_drift: Optional[float] = 0.05,
                 early_stop: bool = True,
                 rounds: Optional[int] = None,
                 scalar_prefix: str = 'test/tta_') -> None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f'TestTimeAdapter: steps must be an int >= 0, got {steps!r}')
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f'TestTimeAdapter: lr must be a finite number > 0, got {lr!r}')
        if not (isinstance(lr_decay, (int, float)) and 0 < lr_decay <= 1):
            raise ValueError(f'TestTimeAdapter: lr_decay must be in (0, 1], got {lr_decay!r}')
        _choice('optimizer', optimizer, ('adam', 'sgd'))
        _choice('mode', mode, ('episodic', 'continual'))
        _choice('unit', unit, ('batch', 'instance'))
        _choice('safeguard', safeguard, ('instance', 'batch', 'none'))
        if select_quantile is not None and select_threshold is not None:
            raise ValueError('TestTimeAdapter: set select_quantile or select_threshold, '
                             f'not both (got {select_quantile!r} and {select_threshold!r})')
        if select_quantile is not None and not 0 <= select_quantile < 1:
            raise ValueError('TestTimeAdapter: select_quantile must be in [0, 1), got '
                             f'{select_quantile!r}')
        if select_threshold is not None and not select_threshold >= 0:
            raise ValueError('TestTimeAdapter: select_threshold must be >= 0, got '
                             f'{select_threshold!r}')
        if drift_k is not None and not drift_k > 1:
            raise ValueError(f'TestTimeAdapter: drift_k must be > 1 or None, got {drift_k!r}')
        if isinstance(drift_window, bool) or not isinstance(drift_window, int) \
                or drift_window < 1:
            raise ValueError('TestTimeAdapter: drift_window must be an int >= 1, got '
                             f'{drift_window!r}')
        if max_drift is not None and not (isinstance(max_drift, (int, float))
                                          and 0 < max_drift < math.inf):
            raise ValueError('TestTimeAdapter: max_drift must be a finite number > 0 or '
                             f'None, got {max_drift!r}')
        if rounds is not None and (not isinstance(rounds, int) or rounds < 0):
            raise ValueError(f'TestTimeAdapter: rounds must be an int >= 0, got {rounds!r}')
        self.steps, self.lr, self.lr_decay = steps, float(lr), float(lr_decay)
        self.optimizer, self.mode, self.safeguard = optimizer, mode, safeguard
        self.unit = unit
        self.select_quantile, self.select_threshold = select_quantile, select_threshold
        self.drift_k, self.early_stop, self.rounds = drift_k, early_stop, rounds
        self.drift_window, self.max_drift = drift_window, max_drift
        self.scalar_prefix = scalar_prefix
        self.history = []  # per-batch statistics (floats), cleared by reset()
        self.reset()

    @classmethod
    def from_cfg(cls, cfg) -> 'TestTimeAdapter':
        """Build from a dict of options; ``preset`` (``'default'`` or ``'paper'``)
        names the settings they override. ``True`` means the default preset."""
        cfg = dict() if cfg is True else dict(cfg)
        preset = cfg.pop('preset', 'default')
        _choice('preset', preset, tuple(PRESETS))
        return cls(**dict(PRESETS[preset], **cfg))

    def reset(self) -> None:
        """Forget the continual state (carried weights, optimizer, E_s history)."""
        self._carried = None  # continual: C's adapted weights and optimizer state
        self._recent = deque(maxlen=self.drift_window)
        self.drift_resets = 0
        self.history.clear()

    # ------------------------------------------------------------------ verbs
    def select(self, err: Tensor, valid: Tensor) -> Tensor:
        """BoolTensor[B, G]: the valid chains that take part in adaptation."""
        if self.select_threshold is not None:
            return valid & (err > self.select_threshold)
        if self.select_quantile is not None and valid.any():
            return valid & (err >= torch.quantile(err[valid], self.select_quantile))
        return valid.clone()

    def refine(self, refiner: SCAIRefiner, inp: ChainInputs, rounds: int = 1,
               tol: float = 1e-3) -> Tuple[ChainState, Tensor, Dict[str, Tensor]]:
        """:meth:`SCAIRefiner.refine` with C adapted to this batch first.

        Returns the same ``(state, E_s[B, G], stats)``; ``stats`` adds ``tta_selected``
        and ``tta_accepted`` (BoolTensor[B, G]). C's weights are those of before the call.
        """
        t0 = time.perf_counter()
        rounds = self.rounds if self.rounds is not None else rounds
        with torch.no_grad():
            start = refiner.start(inp)
            e_start, feedback = refiner.self_error(inp, start)
            state, err, stats = refiner.refine(inp, rounds, tol,
                                               init=(start, e_start, feedback))
        err_before = err
        selected = self.select(err, inp.valid)
        accepted = torch.zeros_like(selected)
        idx = selected.any(1).nonzero()[:, 0]
        groups = [idx] if self.unit == 'batch' else list(idx.split(1))
        infos, fallbacks = [], 0
        for g in (groups if self.steps and len(idx) else []):
            sub = inp.subset(g)
            init = (ChainState(start.B[g], start.C[g], start.D[g]), e_start[g],
                    feedback[g])
            with self._trainable(refiner.corr) as trained:
                infos.append(self._adapt(refiner, sub, init, selected[g], trained))
                with torch.no_grad():
                    a_state, a_err, a_stats = refiner.refine(sub, rounds, tol, init=init)
            ok = self._safeguard(a_err, err[g], selected[g])
            accepted[g] = ok
            fallbacks += int((selected[g] & ~ok).sum())
            state = state.where(~accepted, _scatter(state, g, a_state))
            err = err.clone()
            err[g] = torch.where(ok, a_err, err[g])
            for key in ('rounds', 'use_base'):
                stats[key] = stats[key].clone()
                stats[key][g] = torch.where(ok, a_stats[key], stats[key][g])
        stats.update(tta_selected=selected, tta_accepted=accepted)
        self._record(inp.valid, err_before, err, stats, infos, time.perf_counter() - t0,
                     fallbacks)
        return state, err, stats

    # ---------------------------------------------------------------- helpers
    @contextmanager
    def _trainable(self, corr: nn.Module) -> Iterator[Dict[str, Tensor]]:
        """C with gradients on (and the carried weights in continual mode); on exit,
        also on an exception, C's trained weights, flags and gradients come back."""
        trained = _snapshot(corr)
        params = list(corr.parameters())
        saved = [(p.requires_grad, p.grad) for p in params]
        try:
            for p in params:
                p.requires_grad_(True)
            if self.mode == 'continual' and self._carried is not None:
                corr.load_state_dict(self._carried[0])
            yield trained
        finally:
            with torch.no_grad():
                corr.load_state_dict(trained)
            for p, (flag, grad) in zip(params, saved):
                p.requires_grad_(flag)
                p.grad = grad

    def _make_optimizer(self, params) -> torch.optim.Optimizer:
        if self.optimizer == 'adam':
            return torch.optim.Adam(params, lr=self.lr)
        return torch.optim.SGD(params, lr=self.lr, momentum=0.9)

    def _adapt(self, refiner: SCAIRefiner, inp: ChainInputs, init, mask: Tensor,
               trained: Dict[str, Tensor]) -> Dict[str, float]:
        """Step C on the mean E_s over ``mask``; leaves the best state seen in C."""
        corr = refiner.corr
        names, params = zip(*corr.named_parameters())
        anchor = [trained[n] for n in names]
        anchor_norm = _distance(anchor)
        optim = self._make_optimizer(params)
        if self.mode == 'continual' and self._carried is not None:
            optim.load_state_dict(self._carried[1])
        start, _, feedback = init

        def loss_now() -> Tensor:
            e, _ = refiner.self_error(inp, refiner.correct(start, feedback))
            return masked_mean(e, mask)

        drift_reset, diverged, projected = 0.0, 0.0, 0.0
        with torch.enable_grad():
            loss = loss_now()
            first = loss.item()
            if self.mode == 'continual' and self.drift_k and len(self._recent) >= 3 and \
                    not first <= self.drift_k * median(self._recent):
                with torch.no_grad():
                    corr.load_state_dict(trained)
                optim = self._make_optimizer(params)
                self.drift_resets += 1
                drift_reset = 1.0
                loss = loss_now()
                first = loss.item()
            best, best_state = first, _snapshot(corr)
            best_optim = copy.deepcopy(optim.state_dict())
            steps = 0
            for step in range(self.steps):
                if not math.isfinite(loss.item()):
                    diverged = 1.0
                    break
                grads = torch.autograd.grad(loss, params, allow_unused=True)
                if not all(g is None or torch.isfinite(g).all() for g in grads):
                    diverged = 1.0
                    break
                for p, g in zip(params, grads):
                    p.grad = g
                for group in optim.param_groups:
                    group['lr'] = self.lr * self.lr_decay**step
                optim.step()
                projected += self._project(params, anchor, anchor_norm)
                steps += 1
                prev, loss = loss.item(), loss_now()
                value = loss.item()
                if math.isfinite(value) and value < best:
                    best, best_state = value, _snapshot(corr)
                    best_optim = copy.deepcopy(optim.state_dict())
                if not value <= first:  # diverged (E_s rose, or non-finite): stop
                    diverged = 1.0
                    break
                if self.early_stop and not value < prev:
                    break
        with torch.no_grad():
            corr.load_state_dict(best_state)
            drift = _distance(params, anchor) / anchor_norm
        for p in params:
            p.grad = None
        if self.mode == 'continual':
            self._carried = (best_state, best_optim)
            if math.isfinite(first):
                self._recent.append(first)
        return dict(steps=float(steps), drift_reset=drift_reset, loss_first=first,
                    loss_best=best, diverged=diverged, projected=projected,
                    drift=drift.item())

    @torch.no_grad()
    def _project(self, params, anchor, anchor_norm: Tensor) -> float:
        """Pull ``params`` back onto the ``max_drift`` ball around ``anchor``; 1.0 if
        they were outside it."""
        if self.max_drift is None:
            return 0.0
        delta = _distance(params, anchor)
        radius = self.max_drift * anchor_norm
        if not delta > radius:  # also False for a non-finite delta: handled by caller
            return 0.0
        scale = radius / delta
        for p, a in zip(params, anchor):
            p.copy_(a + (p - a) * scale)
        return 1.0

    def _safeguard(self, a_err: Tensor, err: Tensor, selected: Tensor) -> Tensor:
        """BoolTensor: where the adapted result replaces the non-adapted one."""
        if self.safeguard == 'instance':
            return selected & (a_err < err)
        if self.safeguard == 'batch':
            better = masked_mean(a_err, selected) < masked_mean(err, selected)
            return selected & better
        return selected.clone()

    def _record(self, valid: Tensor, err_before: Tensor, err: Tensor,
                stats: Dict[str, Tensor], infos: List[dict], seconds: float,
                fallbacks: int = 0) -> None:
        """Per-batch statistics: kept in :attr:`history` and sent to the MessageHub.

        ``fallbacks``: selected chains that kept the non-adapted result (never above the
        base's E_s); ``diverged``: adaptation runs stopped by a non-finite loss or
        gradient or by E_s rising above its value before adaptation.
        """
        n = valid.sum().clamp(min=1)
        frac = lambda m: ((m & valid).sum() / n).item()  # noqa: E731
        row = dict(E_s_before=masked_mean(err_before, valid).item(),
                   E_s_after=masked_mean(err, valid).item(),
                   steps=sum(i['steps'] for i in infos) / max(len(infos), 1),
                   rounds=masked_mean(stats['rounds'].float(), valid).item(),
                   selected_frac=frac(stats['tta_selected']),
                   accepted_frac=frac(stats['tta_accepted']),
                   drift_resets=float(sum(i['drift_reset'] for i in infos)),
                   projected=float(sum(i['projected'] for i in infos)),
                   drift=max((i['drift'] for i in infos), default=0.0),
                   fallbacks=float(fallbacks),
                   selected=float((stats['tta_selected'] & valid).sum()),
                   diverged=float(sum(i['diverged'] for i in infos)),
                   time=seconds)
        self.history.append(row)
        hub = MessageHub.get_current_instance()
        for key, value in row.items():
            hub.update_scalar(self.scalar_prefix + key, value)


def _distance(params, anchor=None) -> Tensor:
    """L2 norm of ``params`` (minus ``anchor``), over all the tensors together."""
    if anchor is None:
        return torch.cat([p.flatten() for p in params]).norm()
    return torch.cat([(p - a).flatten() for p, a in zip(params, anchor)]).norm()


def _scatter(full: ChainState, idx: Tensor, sub: ChainState) -> ChainState:
    """``full`` with the instances ``idx`` replaced by ``sub``."""
    out = {}
    for s in 'BCD':
        x = getattr(full, s).clone()
        x[idx] = getattr(sub, s).to(x.dtype)
        out[s] = x
    return ChainState(**out)
