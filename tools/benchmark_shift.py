"""`make benchmark-shift`: SCAI under distribution shift (corruptions and occlusion).

    .venv/bin/python tools/benchmark_shift.py                 # the full run (resumable)
    .venv/bin/python tools/benchmark_shift.py --docs          # + docs/benchmarks_shift.*
    .venv/bin/python tools/benchmark_shift.py --limit 64 --shifts contrast occlusion

Reuses the benchmark of ``tools/benchmark.py`` (same --work-dir and options: its base
checkpoint, clean caches, SCAI model and validation-tuned settings; steps 1-4 run first
and are skipped when done), then for each shift (7 corruptions + synthetic occlusion) x
severity (1, 3, 5) and split (LSPET-test, COCO sample with 12 limb joints):
1. runs the frozen base once on the shifted images (plain + flip) and caches it under
   <work-dir>/e<N>/shift/<shift>-<sev>/<split>.pt;
2. evaluates every method on that cache: base, base+flip, +SCAI(+flip),
   +SCAI+TTA(+flip) (episodic), + selective (q=0.5), + continual;
3. prints the tables (mean over shifts = "mAP-C", per shift, adaptation statistics,
   E_s vs severity) and writes <work-dir>/shift_report.{json,md} (docs/ with --docs:
   benchmarks_shift.{md,json,png}).
Any other option is passed to tools/benchmark.py's parser (e.g. --stages).
"""
import argparse
import json
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import benchmark as bench_cli  # noqa: E402  (tools/benchmark.py)
import mmpose_scai  # noqa: E402,F401  (compat shims before mmpose.models)
from benchmarks import Pipeline  # noqa: E402
from benchmarks.shift import ShiftBenchmark, ShiftSettings  # noqa: E402
from benchmarks.corruptions import SHIFTS  # noqa: E402
from benchmarks.data_root import repo_root  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog='\n'.join(__doc__.splitlines()[1:]))
    p.add_argument('--shifts', nargs='+', default=list(SHIFTS), choices=list(SHIFTS))
    p.add_argument('--severities', nargs='+', type=int, default=[1, 3, 5],
                   choices=[1, 2, 3, 4, 5])
    p.add_argument('--splits', nargs='+', default=['test', 'coco'], choices=['test', 'coco'])
    p.add_argument('--limit', type=int, default=None,
                   help='evaluate a fixed seeded subset of this many instances per split '
                   '(default: all; a limited run has its own folders)')
    p.add_argument('--seed', type=int, default=0, help='seed of the per-image shifts')
    p.add_argument('--methods', nargs='+', default=None,
                   help='only these methods (default: all)')
    p.add_argument('--threads', type=int, default=1,
                   help='torch CPU threads (default 1: the refinement is many small '
                   'operations, measured ~7x faster with 1 thread than 2 on a shared '
                   '2-core machine)')
    p.add_argument('--docs', action='store_true',
                   help='also write docs/benchmarks_shift.{md,json,png}')
    return p.parse_known_args(argv)


def main(argv=None) -> None:
    args, rest = parse_args(argv)
    torch.set_num_threads(args.threads)
    bench_args = bench_cli.parse_args(rest)  # --work-dir, --stages, ...
    s = bench_cli.settings_from_args(bench_args)
    ss = ShiftSettings(shifts=tuple(args.shifts), severities=tuple(args.severities),
                       splits=tuple(args.splits), seed=args.seed, limit=args.limit,
                       methods=tuple(args.methods) if args.methods else None,
                       docs_dir=osp.join(repo_root(), 'docs') if args.docs else None)
    print(f'benchmark settings: {json.dumps(s.__dict__, default=str)}', flush=True)
    print(f'shift settings: {json.dumps(ss.__dict__, default=str)}', flush=True)
    ShiftBenchmark(Pipeline(s), ss).run()


if __name__ == '__main__':
    main()
