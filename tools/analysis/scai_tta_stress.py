"""TTA with a far too large lr on a finished benchmark run (issue 14, docs/reliability.md).

    nice -n 10 .venv/bin/python tools/analysis/scai_tta_stress.py \
        --work-dir work_dirs/benchmark --splits test --mult 100

Reads ``<work-dir>/report.json`` of a finished ``tools/benchmark.py`` run (its base
checkpoint, trained SCAI, tuned TTA settings and cached base heatmaps; nothing is trained
or re-cached) and evaluates on each split: the base, the tuned ``+SCAI+TTA`` row and the
same TTA with ``lr x mult``. The stress rows are stored beside the benchmark's rows
(``stress: TTA lr x<mult>``). Passes when the stressed AP is not below the base's, the
fallbacks are logged and fewer than 100 % of the selected chains fall back. The guard
that holds here is the trust region (``max_drift``): the steps are pulled back to it.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import mmpose_scai  # noqa: E402,F401  (compat shims before mmpose.models)
from mmpose_scai.tta import TestTimeAdapter  # noqa: E402
from benchmarks import Pipeline, Settings  # noqa: E402
from benchmarks.methods import Variant  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--work-dir', default=osp.join('work_dirs', 'benchmark'))
    p.add_argument('--splits', nargs='+', default=['test'])
    p.add_argument('--mult', type=float, default=100.)
    args = p.parse_args(argv)
    path = osp.join(args.work_dir, 'report.json')
    if not osp.exists(path):
        print(f'{path} not found: run tools/benchmark.py first', file=sys.stderr)
        return 2
    with open(path) as f:
        rep = json.load(f)
    fields = Settings.__dataclass_fields__
    settings = {k: v for k, v in rep['settings'].items() if k in fields}
    pipe = Pipeline(Settings(**dict(settings, work_dir=args.work_dir)))
    pipe.report.update(base=rep['base'], scai_checkpoints=rep['scai_checkpoints'])
    pipe.tuning = rep['tuning']
    pipe.step_cache()  # loads the cached base outputs
    ch = pipe.tuning['chosen']
    lr = TestTimeAdapter.from_cfg(ch['tta']).lr
    sr = dict(start=ch['start'], rounds=ch['rounds'])
    out, ok = {}, True
    for split in args.splits:
        base = pipe.evaluate(split, Variant('base', model='base', refine=False))
        # recomputed (not the cached rows): they must reflect the adapter as it is now
        tuned = pipe.evaluate(split, Variant('+SCAI+TTA', tta=ch['tta'], **sr), force=True)
        name = f'stress: TTA lr x{args.mult:g}'
        st = pipe.evaluate(split, Variant(name, tta=dict(ch['tta'], lr=lr * args.mult),
                                          **sr), force=True)
        t = st['tta']
        frac = t['fallbacks'] / max(t['selected'], 1e-12)
        passed = bool(st['AP'] >= base['AP'] and frac < 1)
        ok = ok and passed
        out[split] = dict(n=st['n'], base_AP=base['AP'], tta_AP=tuned['AP'],
                          stress_AP=st['AP'], lr=lr * args.mult, fallback_frac=frac,
                          diverged_per_batch=t['diverged'],
                          projected_per_batch=t.get('projected'), stress_tta=t,
                          passed=passed)
        print(f'{split}: n={st["n"]} AP base {base["AP"]:.4f} | +SCAI+TTA '
              f'{tuned["AP"]:.4f} | lr x{args.mult:g} ({lr * args.mult:g}) '
              f'{st["AP"]:.4f}; fallbacks {frac:.1%} of the selected chains, diverged '
              f'{t["diverged"]:.2f} runs and {t.get("projected", 0):.2f} steps pulled '
              f'back to max_drift per batch -> {"PASS" if passed else "FAIL"}')
    print(json.dumps(out, indent=1))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
