"""SCAITTAHook: test-time adaptation of SCAI's correction networks in the test loop."""
from typing import Dict, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import Tensor

from mmpose.registry import HOOKS
from ...models.heads import SCAIHead
from ...tta import TestTimeAdapter


@HOOKS.register_module()
class SCAITTAHook(Hook):
    """Attach a :class:`TestTimeAdapter` to the model's :class:`SCAIHead` while the test
    (and optionally the validation) loop runs.

    The adapter puts C's trained weights back after every batch, also when a batch
    raises; in continual mode the carried weights live in the adapter. In addition the
    hook snapshots C when it attaches and loads that snapshot back when it detaches, as
    :class:`EMAHook` does. MMEngine calls no hook when a loop raises, so a stale
    adapter is also detached at the start of the next train, val or test loop.

    Per-batch statistics reach the usual logs as ``tta_*`` scalars of the running
    phase; a summary is logged at the end of the loop.

    Args:
        phases (Sequence[str]): Loops that adapt: ``'test'`` and/or ``'val'``.
        preset (str): Named adapter settings (``'default'`` or ``'paper'``).
        **adapter: :class:`TestTimeAdapter` options overriding the preset.

    Examples:
        >>> custom_hooks = [dict(type='SCAITTAHook', preset='paper')]
    """

    priority = 'NORMAL'

    def __init__(self, phases: Sequence[str] = ('test', ), preset: str = 'default',
                 **adapter) -> None:
        phases = (phases, ) if isinstance(phases, str) else tuple(phases)
        bad = [p for p in phases if p not in ('val', 'test')]
        if bad or not phases:
            raise ValueError(f'SCAITTAHook: phases must be a non-empty subset of '
                             f'("val", "test"), got {phases!r}')
        self.phases = phases
        self.adapter = TestTimeAdapter.from_cfg(dict(adapter, preset=preset))
        self._head: Optional[SCAIHead] = None
        self._previous = None
        self._trained: Dict[str, Tensor] = {}

    # ------------------------------------------------------------ attach/detach
    @staticmethod
    def scai_head(runner) -> SCAIHead:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        head = getattr(model, 'head', None)
        if not isinstance(head, SCAIHead):
            raise TypeError('SCAITTAHook adapts the correction networks of an SCAIHead; '
                            f'the model {type(model).__name__} has head '
                            f'{type(head).__name__}. Use model.head=dict(type="SCAIHead", '
                            '...) or remove the hook.')
        return head

    def _attach(self, runner, phase: str) -> None:
        self._detach(runner)
        head = self.scai_head(runner)
        self._head, self._previous = head, head.adapter
        self._trained = {k: v.detach().clone()
                         for k, v in head.refiner.corr.state_dict().items()}
        self.adapter.reset()
        self.adapter.scalar_prefix = f'{phase}/tta_'
        head.adapter = self.adapter

    def _detach(self, runner, phase: Optional[str] = None) -> None:
        head, self._head = self._head, None
        if head is None:
            return
        head.adapter = self._previous
        head.refiner.corr.load_state_dict(self._trained)
        self._previous, self._trained = None, {}
        if phase is not None:
            self._log_summary(runner, phase)

    def _log_summary(self, runner, phase: str) -> None:
        rows = self.adapter.history
        if not rows:
            return
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
        runner.logger.info(
            f'SCAI TTA ({phase}, {len(rows)} batches, {self.adapter.mode}): E_s '
            f'{mean["E_s_before"]:.4f} -> {mean["E_s_after"]:.4f}, steps '
            f'{mean["steps"]:.2f}, rounds {mean["rounds"]:.2f}, selected '
            f'{mean["selected_frac"]:.1%}, accepted {mean["accepted_frac"]:.1%}, '
            f'drift resets {sum(r["drift_resets"] for r in rows):.0f}, '
            f'{mean["time"] * 1e3:.1f} ms/batch')
        fallbacks, selected = (sum(r[k] for r in rows) for k in ('fallbacks', 'selected'))
        diverged = sum(r['diverged'] for r in rows)
        projected = sum(r.get('projected', 0.) for r in rows)
        log = runner.logger.warning if diverged or projected else runner.logger.info
        log(f'SCAI TTA ({phase}): {fallbacks:.0f} of {selected:.0f} selected chains '
            f'({fallbacks / max(selected, 1):.1%}) fell back to the non-adapted result; '
            f'adaptation diverged (stopped early) in {diverged:.0f} runs; '
            f'{projected:.0f} steps pulled back to max_drift={self.adapter.max_drift}')

    # ------------------------------------------------------------------ hooks
    def before_train(self, runner) -> None:
        self._detach(runner)

    def _enter(self, runner, phase: str) -> None:
        if phase in self.phases:
            self._attach(runner, phase)
        else:
            self._detach(runner)

    def before_val(self, runner) -> None:
        self._enter(runner, 'val')

    def after_val(self, runner) -> None:
        self._detach(runner, 'val')

    def before_test(self, runner) -> None:
        self._enter(runner, 'test')

    def after_test(self, runner) -> None:
        self._detach(runner, 'test')
