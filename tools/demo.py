"""`make demo`: base vs +SCAI vs +SCAI+TTA on real photos, with before/after overlays.

Reuses the benchmark's checkpoints (``work_dirs/benchmark/report.json``) when present;
otherwise trains a tiny base and SCAI for a few minutes (numbers then illustrative).
Data: ``$SCAI_DATA_ROOT``, ``../shared/data`` or the embedded ``data/demo`` subset.
See ``mmpose_scai/demo.py``.

Example:
    python tools/demo.py                    # a few minutes on 2 CPU cores
    python tools/demo.py --no-benchmark     # always train the tiny models
"""
import argparse
import time

import os.path as osp  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository root: benchmarks/
import mmpose_scai  # noqa: F401  (compat shims before anything imports mmpose.models)
from benchmarks.demo import DemoSettings, run_demo


def parse_args() -> argparse.Namespace:
    d = DemoSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default=d.work_dir)
    parser.add_argument('--benchmark-dir', default=d.benchmark_dir)
    parser.add_argument('--no-benchmark', action='store_true',
                        help='ignore cached benchmark checkpoints; train tiny models')
    parser.add_argument('--train-images', type=int, default=d.train_images)
    parser.add_argument('--base-epochs', type=int, default=d.base_epochs)
    parser.add_argument('--test-images', type=int, default=d.test_images)
    parser.add_argument('--num-vis', type=int, default=d.num_vis)
    parser.add_argument('--num-workers', type=int, default=d.num_workers)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    start = time.perf_counter()

    def log(msg: str) -> None:
        print(f'[demo {time.perf_counter() - start:5.0f} s] {msg}', flush=True)

    s = DemoSettings(work_dir=args.work_dir, benchmark_dir=args.benchmark_dir,
                     use_benchmark=not args.no_benchmark, train_images=args.train_images,
                     base_epochs=args.base_epochs, test_images=args.test_images,
                     num_vis=args.num_vis, num_workers=args.num_workers)
    out = run_demo(s, log)
    print()
    print(out['table'])
    print()
    for split, files in out['overlays'].items():
        if files:
            print(f'overlays ({split}, base | +SCAI+TTA | ground truth): '
                  f'{", ".join(files)}')
    ckpts = ', '.join(f'{k} {v}' for k, v in out['checkpoints'].items())
    print(f'models: {out["source"]} ({ckpts}); SCAI test settings {out["test"]}; '
          f'total {time.perf_counter() - start:.0f} s')


if __name__ == '__main__':
    main()
