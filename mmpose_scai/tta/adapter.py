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
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from torch import Tensor

from ..models.losses import masked_mean
from ..models.refiners.base_refiner import BaseRefiner
from ..structures import ChainInputs, ChainState
from .safeguards import DriftGuard, TrustRegion, accept, select_chains

#: Named settings, merged under the user's options by :meth:`TestTimeAdapter.from_cfg`
#: (the one place they are defined; configs name a preset). ``default`` (the
#: constructor's defaults) meets the cost goal of spec §4: two Adam steps on the worse
#: half of the chains. ``paper`` is the paper's schedule (spec §8: 20 steps, lr 0.013,
#: x0.96 per step, 20 correction rounds, per-batch acceptance, no trust region).
PRESETS = dict(
    default=dict(),
    paper=dict(steps=20, lr=0.013, lr_decay=0.96, optimizer='adam', safeguard='batch',
               select_quantile=None, early_stop=True, rounds=20, max_drift=None),
)


def _check(ok: bool, what: str, value) -> None:
    if not ok:
        raise ValueError(f'TestTimeAdapter: {what}, got {value!r}')


def _is_int(value, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _snapshot(module: nn.Module) -> Dict[str, Tensor]:
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
        number = (int, float)
        _check(_is_int(steps, 0), 'steps must be an int >= 0', steps)
        _check(isinstance(lr, number) and math.isfinite(lr) and lr > 0,
               'lr must be a finite number > 0', lr)
        _check(isinstance(lr_decay, number) and 0 < lr_decay <= 1,
               'lr_decay must be in (0, 1]', lr_decay)
        for name, value, options in (('optimizer', optimizer, ('adam', 'sgd')),
                                     ('mode', mode, ('episodic', 'continual')),
                                     ('unit', unit, ('batch', 'instance')),
                                     ('safeguard', safeguard, ('instance', 'batch', 'none'))):
            _check(value in options, f'{name} must be one of {options}', value)
        _check(select_quantile is None or select_threshold is None,
               'set select_quantile or select_threshold, not both',
               (select_quantile, select_threshold))
        _check(select_quantile is None or 0 <= select_quantile < 1,
               'select_quantile must be in [0, 1)', select_quantile)
        _check(select_threshold is None or select_threshold >= 0,
               'select_threshold must be >= 0', select_threshold)
        _check(drift_k is None or drift_k > 1, 'drift_k must be > 1 or None', drift_k)
        _check(_is_int(drift_window, 1), 'drift_window must be an int >= 1', drift_window)
        _check(max_drift is None or (isinstance(max_drift, number)
                                     and 0 < max_drift < math.inf),
               'max_drift must be a finite number > 0 or None', max_drift)
        _check(rounds is None or _is_int(rounds, 0), 'rounds must be an int >= 0', rounds)
        self.steps, self.lr, self.lr_decay = steps, float(lr), float(lr_decay)
        self.optimizer, self.mode, self.unit = optimizer, mode, unit
        self.safeguard, self.early_stop, self.rounds = safeguard, early_stop, rounds
        self.select_quantile, self.select_threshold = select_quantile, select_threshold
        self.max_drift, self.scalar_prefix = max_drift, scalar_prefix
        self.drift_guard = DriftGuard(drift_k, drift_window)
        self.history: List[Dict[str, float]] = []  # per-batch statistics
        self.reset()

    @classmethod
    def from_cfg(cls, cfg) -> 'TestTimeAdapter':
        """Build from a dict of options; ``preset`` (``'default'`` or ``'paper'``)
        names the settings they override. ``True`` means the default preset."""
        cfg = dict() if cfg is True else dict(cfg)
        preset = cfg.pop('preset', 'default')
        _check(preset in PRESETS, f'preset must be one of {tuple(PRESETS)}', preset)
        return cls(**dict(PRESETS[preset], **cfg))

    def reset(self) -> None:
        """Forget the continual state (carried weights, optimizer, E_s history)."""
        self._carried = None  # continual: C's adapted weights and optimizer state
        self.drift_guard.clear()
        self.history.clear()

    # ------------------------------------------------------------------ verbs
    def refine(self, refiner: BaseRefiner, inp: ChainInputs, rounds: int = 1,
               tol: float = 1e-3) -> Tuple[ChainState, Tensor, Dict[str, Tensor]]:
        """:meth:`BaseRefiner.refine` with C adapted to this batch first.

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
        selected = select_chains(err, inp.valid, self.select_quantile,
                                 self.select_threshold)
        accepted = torch.zeros_like(selected)
        idx = selected.any(1).nonzero()[:, 0]
        groups = [idx] if self.unit == 'batch' else list(idx.split(1))
        infos = []
        for g in (groups if self.steps and len(idx) else []):
            sub = inp.subset(g)
            init = (ChainState(start.B[g], start.C[g], start.D[g]), e_start[g],
                    feedback[g])
            with self._trainable(refiner.corr) as trained:
                infos.append(self._adapt(refiner, sub, init, selected[g], trained))
                with torch.no_grad():
                    a_state, a_err, a_stats = refiner.refine(sub, rounds, tol, init=init)
            ok = accept(a_err, err[g], selected[g], self.safeguard)
            accepted[g] = ok
            state = state.where(~accepted, _scatter(state, g, a_state))
            err = err.clone()
            err[g] = torch.where(ok, a_err, err[g])
            for key in ('rounds', 'use_base'):
                stats[key] = stats[key].clone()
                stats[key][g] = torch.where(ok, a_stats[key], stats[key][g])
        stats.update(tta_selected=selected, tta_accepted=accepted)
        self._record(inp.valid, err_before, err, stats, infos, time.perf_counter() - t0)
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

    def _optimizer(self, params: Sequence[Tensor], carried: bool) -> torch.optim.Optimizer:
        if self.optimizer == 'adam':
            optim = torch.optim.Adam(params, lr=self.lr)
        else:
            optim = torch.optim.SGD(params, lr=self.lr, momentum=0.9)
        if carried and self.mode == 'continual' and self._carried is not None:
            optim.load_state_dict(self._carried[1])
        return optim

    @staticmethod
    def _step(optim: torch.optim.Optimizer, loss: Tensor, params: Sequence[Tensor],
              lr: float) -> bool:
        """One optimizer step on ``loss``; False (and no step) if the loss or a
        gradient is not finite."""
        if not math.isfinite(loss.item()):
            return False
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        if not all(g is None or torch.isfinite(g).all() for g in grads):
            return False
        for p, g in zip(params, grads):
            p.grad = g
        for group in optim.param_groups:
            group['lr'] = lr
        optim.step()
        return True

    def _adapt(self, refiner: BaseRefiner, inp: ChainInputs, init, mask: Tensor,
               trained: Dict[str, Tensor]) -> Dict[str, float]:
        """Step C on the mean E_s over ``mask`` (BoolTensor[B, G]); leaves the best
        state seen in C. Stops when E_s stops falling (``early_stop``) or diverges (a
        non-finite loss or gradient, or E_s above its value before adaptation)."""
        corr = refiner.corr
        names, params = zip(*corr.named_parameters())
        region = TrustRegion(params, [trained[n] for n in names], self.max_drift)
        start, _, feedback = init

        def loss_now() -> Tensor:
            return masked_mean(refiner.self_error(inp, refiner.correct(start, feedback))[0],
                               mask)

        info = dict(steps=0., drift_reset=0., diverged=0., projected=0.)
        with torch.enable_grad():
            loss = loss_now()
            if self.mode == 'continual' and self.drift_guard.should_reset(loss.item()):
                with torch.no_grad():
                    corr.load_state_dict(trained)
                info['drift_reset'] = 1.
                loss = loss_now()
            optim = self._optimizer(params, carried=not info['drift_reset'])
            first = loss.item()
            best = (first, _snapshot(corr), copy.deepcopy(optim.state_dict()))
            for step in range(self.steps):
                if not self._step(optim, loss, params, self.lr * self.lr_decay**step):
                    info['diverged'] = 1.
                    break
                info['projected'] += region.project()
                info['steps'] += 1
                prev, loss = loss.item(), loss_now()
                if loss.item() < best[0]:
                    best = (loss.item(), _snapshot(corr), copy.deepcopy(optim.state_dict()))
                if not loss.item() <= first:  # E_s rose, or non-finite
                    info['diverged'] = 1.
                    break
                if self.early_stop and not loss.item() < prev:
                    break
        with torch.no_grad():
            corr.load_state_dict(best[1])
        for p in params:
            p.grad = None
        if self.mode == 'continual':
            self._carried = best[1:]
            self.drift_guard.update(first)
        return dict(info, loss_first=first, loss_best=best[0], drift=region.drift())

    def _record(self, valid: Tensor, err_before: Tensor, err: Tensor,
                stats: Dict[str, Tensor], infos: List[dict], seconds: float) -> None:
        """Per-batch statistics: kept in :attr:`history` and sent to the MessageHub.

        ``fallbacks``: selected chains that kept the non-adapted result (never above the
        base's E_s); ``diverged``: adaptation runs stopped by a non-finite loss or
        gradient or by E_s rising above its value before adaptation.
        """
        n = valid.sum().clamp(min=1)
        selected, accepted = stats['tta_selected'], stats['tta_accepted']
        frac = lambda m: ((m & valid).sum() / n).item()  # noqa: E731
        total = lambda key: float(sum(i[key] for i in infos))  # noqa: E731
        row = dict(E_s_before=masked_mean(err_before, valid).item(),
                   E_s_after=masked_mean(err, valid).item(),
                   steps=total('steps') / max(len(infos), 1),
                   rounds=masked_mean(stats['rounds'].float(), valid).item(),
                   selected_frac=frac(selected),
                   accepted_frac=frac(accepted),
                   drift_resets=total('drift_reset'),
                   projected=total('projected'),
                   drift=max((i['drift'] for i in infos), default=0.0),
                   fallbacks=float((selected & ~accepted).sum()) if infos else 0.,
                   selected=float((selected & valid).sum()),
                   diverged=total('diverged'),
                   time=seconds)
        self.history.append(row)
        hub = MessageHub.get_current_instance()
        for key, value in row.items():
            hub.update_scalar(self.scalar_prefix + key, value)


def _scatter(full: ChainState, idx: Tensor, sub: ChainState) -> ChainState:
    """``full`` with the instances ``idx`` replaced by ``sub``."""
    out = {}
    for s in 'BCD':
        x = getattr(full, s).clone()
        x[idx] = getattr(sub, s).to(x.dtype)
        out[s] = x
    return ChainState(**out)
