"""`make benchmark`: the real-data benchmark of SCAI on LSPET and the COCO sample.

    .venv/bin/python tools/benchmark.py            # the full run (resumable)
    .venv/bin/python tools/benchmark.py --quick    # a few minutes' smoke run

Steps (each cached under --work-dir; re-running skips what is done):
1. base: reuse / wait for / resume the base training (MMPose config, 6 epochs), then
   its validation AP per epoch; the checkpoint is picked by validation AP only;
2. run the frozen base once per split (val 500 / LSPET-test 1,000 / COCO sample) with
   and without flip and cache heatmaps, features and metadata;
3. train SCAI on the frozen base with the Runner (staged schedule), plus the ablation
   with Γ frozen in stage 2; SCAI-Lite (coordinate MLPs): pose priors, fine-tuning on
   base predictions on LSPET-train, choices on val, CPU latency at batch 32;
4. tune (start, rounds, TTA selection / safeguard) on the validation split only;
5. evaluate every row on LSPET-test and on the COCO sample (12 limb joints);
6. E_s analyses (correlations, accept rule vs oracle) and bootstrap intervals;
7. print the tables, write <work-dir>/report.{json,md} (and docs/ with --docs).
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import mmpose_scai  # noqa: E402,F401  (compat shims before mmpose.models)
from mmengine.config import DictAction  # noqa: E402
from benchmarks import Pipeline, Settings  # noqa: E402
from benchmarks.data_root import repo_root  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog='\n'.join(__doc__.splitlines()[1:]))
    p.add_argument('--work-dir', default=None,
                   help='default work_dirs/benchmark (work_dirs/benchmark-quick with '
                   '--quick)')
    p.add_argument('--quick', action='store_true',
                   help='smoke run: 64 images per split, 1 epoch per SCAI stage on 128 '
                   'images, 100 bootstrap resamples; reuses the real base checkpoints '
                   'when there are any (else trains a tiny base for one short epoch); no '
                   'anchor threshold (min_anchor_score=0)')
    p.add_argument('--base-config', default=None,
                   help='base config (default: the 6-epoch LSPET ResNet-18)')
    p.add_argument('--base-checkpoint', default=None,
                   help='use this base checkpoint as is (no base training), e.g. '
                   '$(python tools/fetch_blazepose.py --quiet)')
    p.add_argument('--scai-config', default=None,
                   help='SCAI config (default: the LSPET ResNet-18 one)')
    p.add_argument('--feature-cache', action='store_true',
                   help='run the base once per training image and train SCAI on the '
                   'cached features (for a slow base)')
    p.add_argument('--no-switches', action='store_true',
                   help='only the headline rows (no switch / ablation rows)')
    p.add_argument('--rotation', action='store_true',
                   help='also the 4-rotation rows (choice by heatmap peak, and by E_s)')
    p.add_argument('--docs-name', default='benchmarks',
                   help='file stem of the --docs copies (default benchmarks)')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument('--base-epoch', type=int, default=None,
                   help='use this base epoch instead of the val pick (e.g. an early one)')
    p.add_argument('--stages', default='3,2,1',
                   help='SCAI epochs: pretrain,correct,multi-round (default 3,2,1)')
    p.add_argument('--train-images', type=int, default=None,
                   help='train SCAI on a seeded random subset of this many images')
    p.add_argument('--no-ablation', action='store_true',
                   help='skip the Γ-frozen ablation training')
    p.add_argument('--curve-test', action='store_true',
                   help='also report test AP per base epoch (never used to pick)')
    p.add_argument('--bootstrap', type=int, default=None, help='resamples (1000)')
    p.add_argument('--no-lite', action='store_true', help='skip SCAI-Lite')
    p.add_argument('--num-workers', type=int, default=2)
    p.add_argument('--limit', type=int, default=None,
                   help='images per split (default: all; 64 with --quick)')
    p.add_argument('--batch-size', type=int, default=None, help='default 32')
    p.add_argument('--base-cfg-options', nargs='+', action=DictAction, default={},
                   help='override settings of the base config (as `--cfg-options` of '
                   "MMPose's tools)")
    p.add_argument('--scai-cfg-options', nargs='+', action=DictAction, default={},
                   help='override settings of the SCAI config')
    p.add_argument('--lite-options', nargs='+', action=DictAction, default={},
                   help='override SCAI-Lite settings (benchmarks.lite.LiteSettings)')
    p.add_argument('--docs', action='store_true',
                   help='also write docs/benchmarks.json and docs/benchmarks_tables.md')
    return p.parse_args(argv)


def settings_from_args(args) -> Settings:
    pre, cor, mul = (int(x) for x in args.stages.split(','))
    s = Settings(base_epoch=args.base_epoch, train_images=args.train_images,
                 base_checkpoint=args.base_checkpoint, feature_cache=args.feature_cache,
                 rotation=args.rotation, switch_rows=not args.no_switches,
                 ablation=not args.no_ablation, curve_test=args.curve_test,
                 num_workers=args.num_workers, lite=None if args.no_lite else {},
                 stages=dict(pretrain_epochs=pre, correct_epochs=cor, multi_epochs=mul,
                             max_rounds=3))
    root = repo_root()
    s.base_config = osp.join(root, args.base_config or s.base_config)
    s.scai_config = osp.join(root, args.scai_config or s.scai_config)
    if args.quick:
        s.quick, s.limit, s.bootstrap = True, 64, 100
        s.train_images = args.train_images or 128
        s.stages = dict(pretrain_epochs=1, correct_epochs=1, multi_epochs=1, max_rounds=3)
        s.work_dir = osp.join('work_dirs', 'benchmark-quick')
        # only used when no real base exists: one short epoch on 256 images
        s.base_epochs = 1
        s.base_cfg_options = {'train_dataloader.dataset.indices': 256,
                              'val_dataloader.dataset.indices': 64}
        # a one-epoch base's heatmap maxima are all below the default anchor threshold:
        # every chain would be masked and SCAI training would stop with nothing to learn
        s.scai_cfg_options = {'model.head.refiner.min_anchor_score': 0.0}
        if s.lite is not None:
            s.lite = dict(prior_epochs=(2, 1), finetune_epochs=(2, 2, 1),
                          thresholds=(None, 0.3), latency_repeat=10)
    if args.work_dir:
        s.work_dir = args.work_dir
    for name in ('bootstrap', 'limit', 'batch_size'):
        if getattr(args, name) is not None:
            setattr(s, name, getattr(args, name))
    s.base_cfg_options.update(args.base_cfg_options)
    s.scai_cfg_options.update(args.scai_cfg_options)
    if s.lite is not None:
        s.lite.update(args.lite_options)
    if args.docs:
        s.docs_dir = osp.join(root, 'docs')
        s.docs_name = args.docs_name
    return s


def main(argv=None) -> None:
    args = parse_args(argv)
    s = settings_from_args(args)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    print(f'benchmark settings: {json.dumps(s.__dict__, default=str)}', flush=True)
    Pipeline(s).run()


if __name__ == '__main__':
    main()
