"""Generalization under distribution shift (issue 13): corruptions and occlusion.

Reuses the benchmark's frozen base, trained SCAI model and validation-tuned settings
(steps 1-4 of :class:`~.pipeline.Pipeline`) and evaluates them on LSPET-test and the
COCO sample (12 limb joints) under every shift of
:data:`~benchmarks.corruptions.SHIFTS` (7 corruptions + synthetic occlusion) at
severities 1, 3 and 5, next to the clean images (severity 0).

For each condition (shift, severity, split) the base runs **once** (plain and flipped
pass, :func:`~.cache.cache_split`) on images shifted inside the MMPose test pipeline
(:func:`~benchmarks.corruptions.shift_pipeline`, seeded per image); every method
of :func:`shift_methods` then runs on that cache. Everything is cached, so an
interrupted run resumes::

    <work_dir>/e<N>/shift[_n<limit>]/<shift>-<sev>/<split>.pt      base heatmaps, f, meta
    <work_dir>/e<N>/<scai tag>/shift[_n<limit>]/<shift>-<sev>/<split>/
        <method>.{json,npz}   one evaluated row (AP via CocoMetric, PCK, distal error)
        condition.json        all rows + the E_s detector statistics of the condition
    <work_dir>/shift_report.{json,md}

Nothing is tuned here: start, rounds and the TTA options are the pipeline's
``tuning.json`` (chosen on the validation split).
"""
import json
import os
import os.path as osp
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .corruptions import SHIFTS, shift_pipeline
from .analysis import chain_mean, instance_errors, score_keypoints
from .cache import build_loader, build_model, cache_split, decode, load_cache
from .coco_eval import coco_evaluate
from .methods import Variant, plain_correction, run_variant
from .metrics import pearson, spearman
from .pipeline import Pipeline, _jsonable, _slug, machine_info

#: Severity 0 names the clean images (the pipeline's own caches).
CLEAN = 'clean'
SPLIT_NAMES = dict(test='LSPET-test', coco='COCO sample, 12 limb joints')


@dataclass
class ShiftSettings:
    """What the shift evaluation runs (defaults: the full run of
    ``tools/benchmark_shift.py``)."""
    shifts: Tuple[str, ...] = SHIFTS
    severities: Tuple[int, ...] = (1, 3, 5)
    splits: Tuple[str, ...] = ('test', 'coco')
    #: seed of the per-image shift (combined with the image / instance id)
    seed: int = 0
    #: evaluate a fixed seeded subset of this many instances per split (None: all)
    limit: Optional[int] = None
    #: method names of :func:`shift_methods` to run (None: all)
    methods: Optional[Tuple[str, ...]] = None
    #: folder for ``benchmarks_shift.{md,json,png}`` (None: not written)
    docs_dir: Optional[str] = None
    #: log a progress line at least this often (seconds)
    progress_s: float = 20.0


def shift_methods(chosen: dict) -> List[Variant]:
    """The evaluated methods, built from the validation-tuned ``chosen`` settings.

    Args:
        chosen (dict): ``tuning['chosen']`` of the pipeline: ``start``, ``rounds`` and
            ``tta`` (the ``TestTimeAdapter`` options).

    Returns:
        list[Variant]: base, base+flip, +SCAI, +SCAI+flip, +SCAI+TTA (episodic),
        +SCAI+TTA+flip, + selective (``select_quantile=0.5``) and + continual.
    """
    sr = dict(start=chosen['start'], rounds=chosen['rounds'])
    tta = dict(chosen['tta'], mode='episodic')
    return [
        Variant('base', model='base', refine=False, note='base heatmaps, decoded'),
        Variant('base+flip', model='base', refine=False, flip=True, note='MMPose flip test'),
        Variant('+SCAI', **sr, note='refinement, no TTA'),
        Variant('+SCAI+flip', flip=True, **sr, note='refinement of the flip average'),
        Variant('+SCAI+TTA', tta=tta, **sr, note='episodic TTA (tuned preset)'),
        Variant('+SCAI+TTA+flip', flip=True, tta=tta, **sr),
        Variant('+SCAI+TTA selective', tta=dict(tta, select_quantile=0.5), **sr,
                note='adapt only chains with E_s above the batch median'),
        Variant('+SCAI+TTA continual', tta=dict(tta, mode='continual'), **sr,
                note='adapted C carried across batches (one stream per condition)'),
    ]


def _save_json(path: str, obj) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path + '.tmp', 'w') as f:
        json.dump(_jsonable(obj), f, indent=1)
    os.replace(path + '.tmp', path)


def subset_indices(n: int, limit: Optional[int], seed: int = 0) -> Optional[List[int]]:
    """A fixed seeded subset (sorted) of ``limit`` of ``n`` instances; None: all."""
    if not limit or limit >= n:
        return None
    return sorted(int(i) for i in np.random.default_rng(seed).choice(n, limit, replace=False))


def subset_cache(cache: dict, idx: Optional[Sequence[int]]) -> dict:
    """The instances ``idx`` of a cache (None: the cache itself)."""
    if idx is None:
        return cache
    t = torch.as_tensor(idx, dtype=torch.long)
    out = dict(cache)
    for k in ('heatmaps', 'heatmaps_flip', 'feats'):
        if cache.get(k) is not None:
            out[k] = cache[k][t]
    out['meta'] = {k: v[np.asarray(idx)] for k, v in cache['meta'].items()}
    return out


def condition_name(shift: str, severity: int) -> str:
    return CLEAN if severity == 0 else f'{shift}-{severity}'


class ShiftBenchmark:
    """Drives the shift evaluation on top of a :class:`Pipeline` (steps 1-4)."""

    def __init__(self, pipe: Pipeline, settings: ShiftSettings) -> None:
        self.pipe = pipe
        self.s = settings
        self.log = pipe.log
        self.t_start = time.perf_counter()
        self._last_log = time.perf_counter()

    # ------------------------------------------------------------------ setup
    def prepare(self) -> dict:
        """Base checkpoint, clean caches, SCAI model and tuning (reused when done)."""
        p = self.pipe
        p.step_base()
        p.step_cache()
        p.step_train()
        p.step_tune()
        self.head = p.head('scai')
        self.methods = shift_methods(p.tuning['chosen'])
        if self.s.methods is not None:
            unknown = set(self.s.methods) - {m.name for m in self.methods}
            if unknown:
                raise ValueError(f'unknown shift methods {sorted(unknown)}; known: '
                                 f'{[m.name for m in self.methods]}')
            self.methods = [m for m in self.methods if m.name in self.s.methods]
        self.indices = {sp: subset_indices(len(p.caches[sp]['heatmaps']), self.s.limit,
                                           self.s.seed) for sp in self.s.splits}
        return p.tuning

    def tag(self) -> str:
        return 'shift' + (f'_n{self.s.limit}' if self.s.limit else '')

    def cache_path(self, cond: str, split: str) -> str:
        return self.pipe.edir(self.tag(), cond, f'{split}.pt')

    def rows_dir(self, cond: str, split: str) -> str:
        return self.pipe.sdir(self.tag(), cond, split)

    # ------------------------------------------------------------ conditions
    def conditions(self) -> List[Tuple[str, int]]:
        return [(CLEAN, 0)] + [(sh, sev) for sh in self.s.shifts for sev in self.s.severities]

    def base_cache(self, shift: str, severity: int, split: str) -> dict:
        """The condition's base heatmaps (computed once, then loaded)."""
        if severity == 0:
            return subset_cache(self.pipe.caches[split], self.indices[split])
        path = self.cache_path(condition_name(shift, severity), split)
        if not osp.exists(path):
            p = self.pipe
            ds = p.split_dataset(split)
            ds['pipeline'] = shift_pipeline(ds['pipeline'], shift, severity, seed=self.s.seed)
            if self.indices[split] is not None:
                ds['indices'] = self.indices[split]
            if not hasattr(self, '_base_model'):
                self._base_model = build_model(p.cfg('base'), p.report['base']['checkpoint'])
            loader = build_loader(p.cfg('base'), ds, p.s.batch_size, p.s.num_workers)
            last = [time.perf_counter()]

            def progress(done, total):
                if time.perf_counter() - last[0] > self.s.progress_s or done == total:
                    last[0] = time.perf_counter()
                    self.log(f'  cache {shift}-{severity} {split}: {done}/{total}')
            cache_split(self._base_model, loader, path, flip=True,
                        test_cfg=p.cfg('base').model.test_cfg, progress=progress)
        return load_cache(path)

    def evaluate_row(self, cache: dict, split: str, variant: Variant, rdir: str) -> dict:
        """One method on one condition's cache (cached as ``<rdir>/<slug>.json``)."""
        slug = _slug(variant.name)
        jpath = osp.join(rdir, slug + '.json')
        if osp.exists(jpath):
            with open(jpath) as f:
                row = json.load(f)
            if row.get('variant') == _jsonable(variant.to_dict()):
                return row
        res = run_variant(self.head, cache, variant, self.pipe.s.batch_size)
        kpts, scores = decode(self.head, res['heatmaps'], cache['meta'])
        ann = self.pipe.ann_file(split, cache['meta']['img_id'])
        metrics, _, _ = coco_evaluate(ann, cache['dataset_meta'], cache['meta'], kpts,
                                      scores, osp.join(rdir, 'tmp', slug))
        row = dict(variant=variant.to_dict(), split=split, n=int(len(kpts)),
                   AP=metrics['AP'], AP50=metrics['AP .5'], AP75=metrics['AP .75'],
                   AR=metrics['AR'], seconds=round(res['seconds'], 2),
                   **score_keypoints(kpts, cache['meta']))
        arrays = dict(keypoints=kpts, scores=scores)
        if res.get('E_s') is not None:
            valid = res['valid']
            n_valid = max(int(valid.sum()), 1)
            row['corrected_frac'] = float((~res['use_base'] & valid).sum() / n_valid)
            with np.errstate(all='ignore'):
                row['E_s'] = float(np.nanmean(np.where(valid, res['E_s'], np.nan)))
                row['E_base'] = float(np.nanmean(np.where(valid, res['E_base'], np.nan)))
            arrays.update(E_s=res['E_s'], E_base=res['E_base'])
            h = res['tta_history']
            if h:
                row['tta'] = {k: float(np.mean([r[k] for r in h])) for k in h[0]}
        np.savez_compressed(osp.join(rdir, slug + '.npz'), **arrays)
        _save_json(jpath, row)
        return row

    def detector(self, cache: dict, base_kpts: np.ndarray, base_scores: np.ndarray) -> dict:
        """E_s of the base chains (Γ's self-referential error, no label) next to the
        base's true error, for this condition."""
        ch = self.pipe.tuning['chosen']
        refiner = self.head.refiner
        saved, refiner.start_mode = refiner.start_mode, ch['start']
        try:
            plain = plain_correction(self.head, cache, rounds=ch['rounds'])
        finally:
            refiner.start_mode = saved
        truth = instance_errors(base_kpts, cache['meta'])
        e_inst = chain_mean(plain['E_base'])
        with np.errstate(all='ignore'):
            rel = chain_mean(plain['E_base'] / plain['anchor_norm'])
        conf = 1 - base_scores.mean(1)  # the base's own confidence, for comparison
        return dict(E_base=float(np.nanmean(e_inst)), E_base_rel=float(np.nanmean(rel)),
                    refinable_frac=float(plain['valid'].mean()),
                    one_minus_score=float(conf.mean()),
                    inst_r_conf=pearson(conf, truth['distal']),
                    anchor_norm=float(np.nanmean(chain_mean(plain['anchor_norm']))),
                    distal_err=float(np.nanmean(truth['distal'])),
                    pck=float(np.nanmean(truth['acc'])),
                    inst_r_err=pearson(e_inst, truth['distal']),
                    inst_rho_err=spearman(e_inst, truth['distal']))

    def run_condition(self, shift: str, severity: int, split: str) -> dict:
        cond = condition_name(shift, severity)
        rdir = self.rows_dir(cond, split)
        cpath = osp.join(rdir, 'condition.json')
        names = [m.name for m in self.methods]
        if osp.exists(cpath):
            with open(cpath) as f:
                done = json.load(f)
            if all(n in done['rows'] for n in names):
                return done
        os.makedirs(rdir, exist_ok=True)
        cache = self.base_cache(shift, severity, split)
        t0 = time.perf_counter()
        rows = {}
        for m in self.methods:
            t1 = time.perf_counter()
            rows[m.name] = self.evaluate_row(cache, split, m, rdir)
            self.log(f'  {cond} {split} {m.name}: AP {100 * rows[m.name]["AP"]:.1f} '
                     f'({time.perf_counter() - t1:.0f} s)')
        if 'base' in rows:
            base = dict(np.load(osp.join(rdir, 'base.npz')))
        else:
            base = dict(zip(('keypoints', 'scores'),
                            decode(self.head, cache['heatmaps'], cache['meta'])))
        det = self.detector(cache, base['keypoints'], base['scores'])
        out = dict(shift=shift, severity=severity, split=split, n=int(len(cache['heatmaps'])),
                   cache_seconds=round(float(cache.get('seconds', 0.0)), 1),
                   # the base passes (when the cache was made) + the methods (now)
                   seconds=round(float(cache.get('seconds', 0.0))
                                 + time.perf_counter() - t0, 1),
                   rows=rows, detector=det)
        _save_json(cpath, out)
        return out

    def run(self) -> dict:
        """Every condition (resumable), then the report."""
        self.prepare()
        conds = self.conditions()
        total = len(conds) * len(self.s.splits)
        results, k = [], 0
        for shift, sev in conds:
            for split in self.s.splits:
                k += 1
                t0 = time.perf_counter()
                res = self.run_condition(shift, sev, split)
                results.append(res)
                r = res['rows']
                line = ' '.join(f'{n}={100 * r[n]["AP"]:.1f}' for n in
                                ('base', 'base+flip', '+SCAI', '+SCAI+TTA') if n in r)
                self.log(f'[{k}/{total}] {condition_name(shift, sev):20s} {split:4s} AP% '
                         f'{line}; E_s(base) {_f(res["detector"]["E_base"], ".4f")} distal '
                         f'err {_f(res["detector"]["distal_err"])} '
                         f'({time.perf_counter() - t0:.0f} s)')
        return self.report(results)

    # ---------------------------------------------------------------- report
    def report(self, results: List[dict]) -> dict:
        rep = dict(
            settings=asdict(self.s), benchmark_settings=asdict(self.pipe.s),
            base=dict(epoch=self.pipe.report['base'].get('epoch'),
                      checkpoint=self.pipe.report['base'].get('checkpoint')),
            scai_checkpoint=self.pipe.report.get('scai_checkpoints', {}).get('scai'),
            tuning=self.pipe.tuning['chosen'],
            methods=[m.to_dict() for m in self.methods],
            subset=dict(limit=self.s.limit, seed=self.s.seed,
                        n={sp: (len(self.indices[sp]) if self.indices[sp] is not None
                                else len(self.pipe.caches[sp]['heatmaps']))
                           for sp in self.s.splits}),
            conditions=results, summary=summarize(results, [m.name for m in self.methods],
                                                  self.s.severities, self.s.splits),
            finished=time.strftime('%Y-%m-%d %H:%M:%S %Z'),
            wall_seconds=round(time.perf_counter() - self.t_start, 1),
            compute_seconds=round(sum(r['seconds'] for r in results), 1),
            machine=machine_info(),
            command=relative_paths(' '.join(['python'] + sys.argv), _repo_root()))
        rep = _jsonable(rep)
        md = render_markdown(rep)
        wd = self.pipe.wd
        _save_json(osp.join(wd, 'shift_report.json'), rep)
        with open(osp.join(wd, 'shift_report.md'), 'w') as f:
            f.write(md)
        self.pipe.echo(md)
        if self.s.docs_dir:
            os.makedirs(self.s.docs_dir, exist_ok=True)
            _save_json(osp.join(self.s.docs_dir, 'benchmarks_shift.json'),
                       relative_paths(rep, _repo_root()))
            with open(osp.join(self.s.docs_dir, 'benchmarks_shift.md'), 'w') as f:
                f.write(md)
            plot_ap_vs_severity(rep, osp.join(self.s.docs_dir, 'benchmarks_shift.png'))
        return rep


# ------------------------------------------------------------------ summaries
def _by(results: List[dict], split: str) -> Dict[Tuple[str, int], dict]:
    return {(r['shift'], r['severity']): r for r in results if r['split'] == split}


def summarize(results: List[dict], methods: List[str], severities: Sequence[int],
              splits: Sequence[str]) -> dict:
    """Means over shifts per method and severity ("mAP-C"), and E_s vs the true error.

    Returns:
        dict: per split: ``mean[method][sev]`` (AP, PCK, distal error averaged over the
        shifts; ``'0'`` = clean, ``'all'`` = every shifted condition), ``goals`` and
        ``detector`` (Pearson / Spearman of the mean E_s with the base's distal error
        and with 1 − AP, over all conditions and per shift over clean + severities).
    """
    out = {}
    for split in splits:
        by = _by(results, split)
        shifts = sorted({s for s, v in by if v > 0}, key=lambda s: SHIFTS.index(s)
                        if s in SHIFTS else 99)
        if not shifts:
            continue
        mean = {}
        for m in methods:
            mean[m] = {}
            for sev in [0, *severities, 'all']:
                if sev == 0:
                    conds = [by[(CLEAN, 0)]]
                elif sev == 'all':
                    conds = [by[(s, v)] for s in shifts for v in severities]
                else:
                    conds = [by[(s, sev)] for s in shifts]
                rows = [c['rows'][m] for c in conds]
                mean[m][str(sev)] = {k: float(np.mean([r[k] for r in rows]))
                                     for k in ('AP', 'pck', 'distal_err')}
        # E_s as a shift detector: each condition's mean E_s vs the base's true error
        pts = [(by[(CLEAN, 0)]['detector'], by[(CLEAN, 0)]['rows']['base']['AP'])]
        pts += [(by[(s, v)]['detector'], by[(s, v)]['rows']['base']['AP'])
                for s in shifts for v in severities]

        def corr(points):
            es = [_num(d['E_base']) for d, _ in points]
            rel = [_num(d['E_base_rel']) for d, _ in points]
            err = [_num(d['distal_err']) for d, _ in points]
            ap_loss = [1 - ap for _, ap in points]
            conf = [_num(d.get('one_minus_score')) for d, _ in points]
            return dict(n=len(points), r_err=pearson(es, err), rho_err=spearman(es, err),
                        conf_r_err=pearson(conf, err),
                        r_ap=pearson(es, ap_loss), rel_r_err=pearson(rel, err),
                        rel_rho_err=spearman(rel, err))
        per_shift = {}
        for s in shifts:
            p = [pts[0]] + [(by[(s, v)]['detector'], by[(s, v)]['rows']['base']['AP'])
                            for v in severities]
            per_shift[s] = dict(corr(p), E_base=[d['E_base'] for d, _ in p],
                                distal_err=[d['distal_err'] for d, _ in p])
        es_by_sev = {str(v): float(np.nanmean([_num(by[(s, v)]['detector']['E_base'])
                                               for s in shifts])) for v in severities}
        es_by_sev['0'] = by[(CLEAN, 0)]['detector']['E_base']
        out[split] = dict(shifts=shifts, mean=mean, goals=goals(mean, severities),
                          detector=dict(all=corr(pts), per_shift=per_shift,
                                        E_base_by_severity=es_by_sev))
    return out


def _num(v) -> float:
    """A JSON number back as float (``None``, i.e. a NaN once saved, -> NaN)."""
    return float('nan') if v is None else float(v)


def goals(mean: dict, severities: Sequence[int]) -> dict:
    """The issue's goals on the mean over shifts (all shifted conditions)."""
    def ap(m, sev='all'):
        return mean[m][str(sev)]['AP'] if m in mean else None
    out = {}
    if all(m in mean for m in ('+SCAI+TTA', '+SCAI', 'base+flip')):
        out['tta_ge_scai'] = ap('+SCAI+TTA') >= ap('+SCAI')
        out['scai_ge_base_flip'] = ap('+SCAI') >= ap('base+flip')
    if all(m in mean for m in ('+SCAI+TTA+flip', '+SCAI+flip', 'base+flip')):
        out['tta_flip_ge_scai_flip'] = ap('+SCAI+TTA+flip') >= ap('+SCAI+flip')
        out['scai_flip_ge_base_flip'] = ap('+SCAI+flip') >= ap('base+flip')
    if '+SCAI+TTA' in mean and 'base' in mean:
        gains = [ap('+SCAI+TTA', v) - ap('base', v) for v in (0, *severities)]
        out['tta_gain_over_base_by_severity'] = gains
        out['gain_grows_with_severity'] = bool(all(b >= a for a, b in zip(gains, gains[1:])))
    return out


def _repo_root() -> str:
    from .data_root import repo_root
    return repo_root()


def relative_paths(obj, root: str):
    """``obj`` with every string under ``root`` made relative to it (docs carry no
    machine paths)."""
    root = osp.abspath(root).rstrip('/') + '/'
    if isinstance(obj, dict):
        return {k: relative_paths(v, root) for k, v in obj.items()}
    if isinstance(obj, list):
        return [relative_paths(v, root) for v in obj]
    if isinstance(obj, str) and root in obj:
        return obj.replace(root, '')
    return obj


# ------------------------------------------------------------------- markdown
def _pct(v, fmt='.1f') -> str:
    return '–' if v is None else format(100 * v, fmt)


def _f(v, fmt='.3f') -> str:
    return '–' if v is None else format(v, fmt)


def _table(header: List[str], rows: List[List[str]]) -> str:
    out = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
    return '\n'.join(out + ['| ' + ' | '.join(r) + ' |' for r in rows])


def render_markdown(rep: dict) -> str:
    """The tables of a shift report (also what the command prints)."""
    s = rep['settings']
    sevs = s['severities']
    methods = [m['name'] for m in rep['methods']]
    lines = ['# Distribution shift: corruptions and occlusion', '']
    sub = rep['subset']
    lines.append(
        f'Base `{osp.basename(rep["benchmark_settings"]["base_config"])}` epoch '
        f'{rep["base"]["epoch"]} with its SCAI model; '
        f'start/rounds/TTA from the validation tuning: `{rep["tuning"]}`. Shifts: '
        f'{", ".join(s["shifts"])} at severities {", ".join(map(str, sevs))} (0 = clean), '
        f'seed {s["seed"]}, applied to the loaded image before `TopdownAffine`. '
        + ('Instances: ' + ', '.join(f'{SPLIT_NAMES.get(k, k)} {v}' for k, v in
                                     sub['n'].items())
           + (f' (fixed seeded subset, seed {sub["seed"]})' if sub['limit'] else ' (all)'))
        + '. AP, PCK@0.2 in %; distal error ÷ torso size.')
    lines.append('')
    for split, summ in rep['summary'].items():
        name = SPLIT_NAMES.get(split, split)
        by = {(c['shift'], c['severity']): c for c in rep['conditions'] if c['split'] == split}
        cols = ['0'] + [str(v) for v in sevs] + ['all']
        heads = ['clean'] + [f'sev {v}' for v in sevs] + ['mAP-C (all)']
        lines += [f'## {name}: mean over {len(summ["shifts"])} shifts', '']
        lines += ['AP (mean over shifts per severity; "mAP-C" = mean over every shift and '
                  'severity):', '']
        lines.append(_table(['method'] + heads + ['Δ mAP-C vs base+flip'], [
            [m] + [_pct(summ['mean'][m][c]['AP']) for c in cols]
            + [_pct(summ['mean'][m]['all']['AP'] - summ['mean']['base+flip']['all']['AP'],
                    '+.1f') if 'base+flip' in summ['mean'] else '–']
            for m in methods]))
        lines += ['', 'Distal-joint error ÷ torso (mean over shifts) and PCK@0.2:', '']
        lines.append(_table(['method'] + [f'err {h}' for h in heads] + ['PCK clean',
                                                                        'PCK all'], [
            [m] + [_f(summ['mean'][m][c]['distal_err']) for c in cols]
            + [_pct(summ['mean'][m]['0']['pck']), _pct(summ['mean'][m]['all']['pck'])]
            for m in methods]))
        g = summ['goals']
        if g:
            lines += ['', 'Goals on mAP-C: ' + '; '.join(
                f'{k} = {("yes" if v else "**no**") if isinstance(v, bool) else _fmt_list(v)}'
                for k, v in g.items()) + '.']
        conditions = [(sh, v) for sh in [CLEAN] + summ['shifts']
                      for v in ([0] if sh == CLEAN else sevs)]
        for title, key, fmt in (('AP', 'AP', _pct), ('distal error', 'distal_err', _f)):
            lines += ['', f'### {name}: {title} per shift and severity', '']
            lines.append(_table(['shift', 'sev'] + methods, [
                [sh, str(v)] + [fmt(by[(sh, v)]['rows'][m][key]) for m in methods]
                for sh, v in conditions]))
        lines += ['', f'### {name}: adaptation statistics (+SCAI+TTA; selective; '
                  'continual)', '',
                  'E_s before/after: mean over batches of the chains\' E_s before and after '
                  'adaptation; sel/acc: fraction of chains adapted / whose adapted result '
                  'was kept; changed: chains not left at the base; refinable: chains whose '
                  'anchor heatmap passes `min_anchor_score` (the others keep the base and '
                  'have no E_s).', '']
        body = []
        tta_ms = [m for m in ('+SCAI+TTA', '+SCAI+TTA selective', '+SCAI+TTA continual')
                  if m in methods]
        for sh in [CLEAN] + summ['shifts']:
            for v in ([0] if sh == CLEAN else sevs):
                c = by[(sh, v)]
                refinable = c['detector'].get('refinable_frac')
                row = [sh, str(v), _pct(refinable, '.0f')]
                for m in tta_ms:
                    t = (c['rows'][m].get('tta') or {}) if refinable else {}
                    row += [f'{_f(t.get("E_s_before"), ".4f")} → '
                            f'{_f(t.get("E_s_after"), ".4f")}',
                            f'{_pct(t.get("selected_frac"), ".0f")}/'
                            f'{_pct(t.get("accepted_frac"), ".0f")}/'
                            f'{_pct(c["rows"][m].get("corrected_frac"), ".0f")}']
                body.append(row)
        hdr = ['shift', 'sev', 'refinable %']
        for m in tta_ms:
            short = m.replace('+SCAI+TTA', 'TTA').strip() or 'TTA'
            hdr += [f'{short}: E_s before → after', f'{short}: sel/acc/changed %']
        lines.append(_table(hdr, body))
        d = summ['detector']
        lines += ['', f'### {name}: E_s vs severity (is E_s a shift detector?)', '',
                  'Mean E_s of the base chains (Γ\'s label-free self-referential error, '
                  'E_base) and the base\'s true distal error per condition; r = Pearson, '
                  'ρ = Spearman over clean + the severities of each shift; "rel." divides '
                  'E_s by the anchor heatmap\'s norm (E_s scales with it); "1−score": the '
                  'base\'s own confidence as the detector, for comparison; per-instance r '
                  'within each condition in the last column.', '']
        body = []
        for sh in summ['shifts']:
            ps = d['per_shift'][sh]
            inst = [by[(sh, v)]['detector']['inst_r_err'] for v in sevs]
            body.append([sh, ' / '.join(_f(e, '.4f') for e in ps['E_base']),
                         ' / '.join(_f(e) for e in ps['distal_err']),
                         _f(ps['r_err'], '+.2f'), _f(ps['rho_err'], '+.2f'),
                         _f(ps['r_ap'], '+.2f'), _f(ps['rel_r_err'], '+.2f'),
                         _f(ps.get('conf_r_err'), '+.2f'),
                         ' / '.join(_f(e, '+.2f') for e in inst)])
        a = d['all']
        body.append([f'**all {a["n"]} conditions**',
                     ' / '.join(_f(d['E_base_by_severity'][k], '.4f')
                                for k in ['0'] + [str(v) for v in sevs]) + ' (mean)', '',
                     _f(a['r_err'], '+.2f'), _f(a['rho_err'], '+.2f'), _f(a['r_ap'], '+.2f'),
                     _f(a['rel_r_err'], '+.2f'), _f(a.get('conf_r_err'), '+.2f'), ''])
        lines.append(_table(['shift', f'E_s clean / {" / ".join(map(str, sevs))}',
                             f'distal err clean / {" / ".join(map(str, sevs))}',
                             'r(E_s, err)', 'ρ(E_s, err)', 'r(E_s, 1−AP)', 'r rel.',
                             'r(1−score, err)',
                             f'per-instance r (sev {"/".join(map(str, sevs))})'], body))
        lines.append('')
    m = rep['machine']
    lines += ['## Run', '',
              f'Finished {rep["finished"]} on {m.get("cpu")} ({m.get("cpus")} CPUs, torch '
              f'{m.get("torch")}, {m.get("torch_threads")} torch thread(s)). Compute time '
              f'of all conditions (base passes + methods, summed from their caches, i.e. '
              f'the time of an uncached run less start-up) {rep["compute_seconds"] / 60:.1f}'
              f' min; this invocation {rep["wall_seconds"] / 60:.1f} min (cached conditions '
              f'are reused). Command: `{rep["command"]}`.', '']
    return '\n'.join(lines)


def _fmt_list(v) -> str:
    if isinstance(v, list):
        return '[' + ', '.join(f'{100 * x:+.2f}' for x in v) + '] AP points (clean, sev…)'
    return str(v)


# ----------------------------------------------------------------------- plot
def plot_ap_vs_severity(rep: dict, path: str, split: str = 'test') -> str:
    """AP vs severity per method: one panel per shift plus the mean over shifts."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    summ = rep['summary'][split]
    sevs = [0] + list(rep['settings']['severities'])
    methods = [m['name'] for m in rep['methods']]
    by = {(c['shift'], c['severity']): c for c in rep['conditions'] if c['split'] == split}
    panels = summ['shifts'] + ['mean over shifts']
    ncol = 3
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), sharex=True,
                             squeeze=False)
    styles = ['-', '--']
    for i, (ax, panel) in enumerate(zip(axes.flat, panels)):
        for j, m in enumerate(methods):
            if panel == 'mean over shifts':
                ys = [summ['mean'][m][str(v)]['AP'] for v in sevs]
            else:
                ys = [by[(CLEAN if v == 0 else panel, v)]['rows'][m]['AP'] for v in sevs]
            ax.plot(sevs, [100 * y for y in ys], styles[('flip' in m) * 1], marker='o',
                    ms=3, label=m, color=f'C{j}')
        ax.set_title(panel, fontsize=10)
        ax.set_xticks(sevs)
        ax.grid(alpha=0.3)
        if i % ncol == 0:
            ax.set_ylabel('AP (%)')
        if i >= len(panels) - ncol:
            ax.set_xlabel('severity (0 = clean)')
    for ax in list(axes.flat)[len(panels):]:
        ax.axis('off')
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc='lower center', ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f'{SPLIT_NAMES.get(split, split)}: AP vs shift severity', fontsize=11)
    height = 3.2 * nrow
    fig.tight_layout(rect=(0, 0.8 / height, 1, 1 - 0.35 / height))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
