"""SCAI-Lite alone: the benchmark's Lite step and rows, without the heatmap variant.

Runs the benchmark pipeline's steps that SCAI-Lite needs (base pick, base caches,
:meth:`Pipeline.step_lite`) in the same work dir as ``tools/benchmark.py`` and so
reuses, and leaves for it, the same caches, checkpoints and rows; then prints the Lite
rows next to the base rows on LSPET-test and the COCO sample. The full comparison with
the heatmap variant is ``tools/benchmark.py``.

Example:
    nice -n 10 python tools/scai_lite.py
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import mmpose_scai  # noqa: E402,F401  (compat shims before mmpose.models)
from benchmarks import Pipeline, Settings  # noqa: E402
from benchmarks.lite import lite_variants  # noqa: E402
from benchmarks.methods import Variant  # noqa: E402
from benchmarks.report import lite_section  # noqa: E402
from benchmarks.data_root import repo_root  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--work-dir', default=osp.join('work_dirs', 'benchmark'))
    p.add_argument('--base-epoch', type=int, default=None)
    p.add_argument('--train-images', type=int, default=None,
                   help='LSPET-train instances of base predictions (default 3000)')
    args = p.parse_args(argv)
    root = repo_root()
    s = Settings(work_dir=args.work_dir,
                 base_epoch=args.base_epoch,
                 base_config=osp.join(root, Settings.base_config),
                 scai_config=osp.join(root, Settings.scai_config),
                 lite={} if args.train_images is None else
                 dict(train_images=args.train_images))
    pipe = Pipeline(s)
    pipe.step_base()
    pipe.step_cache()
    lite = pipe.step_lite()
    rows = [Variant('base', model='base', refine=False),
            Variant('base+flip', model='base', refine=False, flip=True)]
    rows += lite_variants(lite['chosen'])
    for split in ('test', 'coco'):
        for v in rows:
            r = pipe.evaluate(split, v)
            pipe.echo(f'{split:5s} {v.name:32s} AP {100 * r["AP"]:5.1f}  PCK@0.2 '
                      f'{100 * r["pck"]:5.1f}  distal err {r["distal_err"]:.3f}')
    pipe.echo(lite_section(lite))


if __name__ == '__main__':
    main()
