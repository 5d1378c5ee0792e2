"""`make demo`: base vs +SCAI vs +SCAI+TTA on real photos with shipped weights.

The base is BlazePose-GHUM heavy (fetched, checked by sha256 and converted once into
``$SCAI_CACHE_DIR``); the SCAI refiner is the one the benchmark trained, shipped in
``checkpoints/``. Nothing is trained. On the embedded demo subset (``data/demo``: 20 LSPET
persons, 12 COCO persons) it prints MMPose's ``CocoMetric`` AP for the three settings and
writes side-by-side overlays (base | +SCAI) of the persons SCAI changed most.

Example:
    python tools/demo.py                     # about a minute on 2 CPU cores
    python tools/demo.py --data-root ../shared/data --limit 200 --verbose
"""
import argparse
import contextlib
import io
import logging
import os.path as osp
import sys
import time
from typing import Dict, List

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'demo'))
CONFIG = osp.join(ROOT, 'configs', 'body_2d_keypoint', 'scai', 'lspet',
                  'td-hm_blazepose-ghum-heavy_scai-1xb32-6e_lspet-256x256.py')
REFINER = osp.join(ROOT, 'checkpoints', 'scai_blazepose-ghum-heavy_lspet-256x256.pth')
# The benchmark's validation-tuned test settings for this refiner
# (docs/benchmarks_blazepose.md; checkpoints/README.md): C starts from the base's own
# distal heatmap, up to 3 rounds; TTA on every chain, per-instance safeguard.
TUNED = {'model.head.refiner.start': 'base', 'model.test_cfg.rounds': 3}
ROWS = (('base', dict(refine=False)), ('+SCAI', dict(refine=True)),
        ('+SCAI+TTA', dict(refine=True, tta=dict(preset='default', select_quantile=None))))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--config', default=CONFIG)
    p.add_argument('--refiner', default=REFINER, help='shipped SCAI refiner weights')
    p.add_argument('--data-root', default=osp.join(ROOT, 'data', 'demo'))
    p.add_argument('--limit', type=int, default=None, help='persons per split')
    p.add_argument('--num-vis', type=int, default=3, help='overlays per split')
    p.add_argument('--out-dir', default=osp.join('work_dirs', 'demo'))
    p.add_argument('--verbose', action='store_true', help="MMEngine's log lines too")
    return p.parse_args(argv)


def split_datasets(cfg, data_root: str, limit=None) -> Dict[str, dict]:
    """LSPET-test and the COCO sample under ``data_root``, with the config's test
    pipeline and ground-truth boxes."""
    pipeline = cfg.test_dataloader.dataset.pipeline
    common = dict(data_mode='topdown', test_mode=True, bbox_file=None, pipeline=pipeline)
    out = dict(
        lspet=dict(type='CocoDataset', data_root=osp.join(data_root, 'lspet') + '/',
                   ann_file='annotations/test.json', data_prefix=dict(img='images/'),
                   **common),
        coco=dict(type='CocoDataset', data_root=osp.join(data_root, 'coco_sample') + '/',
                  ann_file='annotations/person_keypoints.json',
                  data_prefix=dict(img='images/'), **common))
    if limit:
        for ds in out.values():
            ds['indices'] = limit
    return out


def evaluate(model, dataset_cfg: dict, test_cfg: dict, verbose: bool) -> Dict:
    """CocoMetric AP of ``model`` under ``test_cfg``, and its keypoints per person."""
    from mmengine.evaluator import Evaluator
    from mmengine.runner import Runner
    from scai_image_demo import test_settings
    quiet = contextlib.redirect_stdout(io.StringIO() if not verbose else sys.stdout)
    with quiet:  # pycocotools prints while it indexes the annotations
        loader = Runner.build_dataloader(dict(
            batch_size=8, num_workers=0, dataset=dataset_cfg,
            sampler=dict(type='DefaultSampler', shuffle=False)))
    ds = loader.dataset
    ann = osp.join(ds.data_root, ds.ann_file) if not osp.isabs(ds.ann_file) else ds.ann_file
    with contextlib.redirect_stdout(io.StringIO() if not verbose else sys.stdout):
        evaluator = Evaluator(dict(type='CocoMetric', ann_file=ann))
    evaluator.dataset_meta = ds.metainfo
    keypoints, errors, boxes, paths = [], [], [], []
    with test_settings(model, **test_cfg):
        for batch in loader:
            outputs = model.test_step(batch)
            evaluator.process(outputs, batch)
            for s in outputs:
                keypoints.append(s.pred_instances.keypoints[0])
                errors.append(s.pred_instances.keypoint_self_errors[0])
                boxes.append(np.asarray(s.gt_instances.bboxes)[0])
                paths.append(s.img_path)
    with contextlib.redirect_stdout(io.StringIO() if not verbose else sys.stdout):
        metrics = evaluator.evaluate(len(ds))
    return dict(AP=metrics['coco/AP'], AR=metrics['coco/AR'], keypoints=np.stack(keypoints),
                self_errors=np.stack(errors), bboxes=np.stack(boxes), paths=paths)


def moved(res: Dict, base: Dict) -> int:
    """Keypoints ``res`` moved away from ``base`` (see ``moved_keypoints``)."""
    from scai_image_demo import moved_keypoints
    return int(moved_keypoints(dict(base=base['keypoints'], scai=res['keypoints'],
                                    bboxes=base['bboxes'])).sum())


def table(results: Dict[str, Dict[str, Dict]]) -> str:
    """AP per split and setting, with the keypoints each setting moved."""
    lines = ['| setting | ' + ' | '.join(f'{s} AP (keypoints moved)' for s in results)
             + ' |', '|---|' + '---|' * len(results)]
    for name, _ in ROWS:
        cells = [f'{100 * r[name]["AP"]:.1f} ({moved(r[name], r["base"])})'
                 for r in results.values()]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def overlays(model, res: Dict[str, Dict], split: str, k: int, out_dir: str) -> List[str]:
    """Overlays (base | +SCAI) of the ``k`` persons whose keypoints SCAI moved most."""
    import mmcv
    from scai_image_demo import draw_pair, person_region
    base, scai = res['base'], res['+SCAI']
    shift = np.linalg.norm(scai['keypoints'] - base['keypoints'], axis=-1).mean(-1)
    files = []
    for i in np.argsort(-shift, kind='stable')[:k]:
        pred = dict(base=base['keypoints'][i:i + 1], scai=scai['keypoints'][i:i + 1],
                    self_errors=scai['self_errors'][i:i + 1],
                    base_scores=np.ones((1, base['keypoints'].shape[1])),
                    bboxes=base['bboxes'][i:i + 1])
        img = mmcv.bgr2rgb(mmcv.imread(base['paths'][i]))
        name = f'{split}_{osp.splitext(osp.basename(base["paths"][i]))[0]}_{i}.png'
        files.append(osp.join(out_dir, name))
        draw_pair(img, pred, model.dataset_meta.get('skeleton_links', []), files[-1],
                  region=person_region(pred['bboxes'], img.shape),
                  title=f'{split}: {osp.basename(base["paths"][i])}, mean shift '
                  f'{shift[i]:.1f} px')
    return files


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()

    def log(msg: str) -> None:
        print(f'[demo {time.perf_counter() - start:4.0f} s] {msg}', flush=True)

    import mmpose_scai  # noqa: F401  (shims first)
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmpose.apis import init_model
    from fetch_blazepose import blazepose_checkpoint
    from mmpose_scai.utils import scai_checkpoint
    if not args.verbose:
        MMLogger.get_instance('mmengine', log_level='ERROR')
        logging.getLogger('mmengine').setLevel(logging.ERROR)
    log('base: BlazePose-GHUM heavy (fetched and converted once, sha256-checked)')
    base_ckpt = blazepose_checkpoint('heavy')
    ckpt = scai_checkpoint(base_ckpt, args.refiner)  # cached beside the base
    log(f'SCAI refiner: {osp.relpath(args.refiner, ROOT)}')
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(TUNED)
    model = init_model(cfg, ckpt, device='cpu')
    results = {}
    for split, ds in split_datasets(cfg, args.data_root, args.limit).items():
        results[split] = {}
        for name, test_cfg in ROWS:
            res = evaluate(model, ds, test_cfg, args.verbose)
            results[split][name] = res
            log(f'{split}: {name} AP {100 * res["AP"]:.1f} ({len(res["paths"])} persons)')
    vis_dir = osp.join(args.out_dir, 'vis')
    files = [f for split in results
             for f in overlays(model, results[split], split, args.num_vis, vis_dir)]
    print()
    print(table(results))
    print()
    print(f'{len(files)} overlays (base | +SCAI) in {vis_dir}/')
    log('done')


if __name__ == '__main__':
    main()
