"""SCAI-Lite end to end: base errors, prior pre-training, fine-tuning, evaluation, latency.

Steps (cached under ``--work-dir``):

1. run the frozen base on the validation split (the 500-image holdout of LSPET-train),
   a subset of the rest of LSPET-train and LSPET-test, keeping decoded points (and the
   test heatmaps);
2. measure the base's per-keypoint errors on the holdout -> :class:`ErrorModel` (without
   ``--base-ckpt``: the empirical fallback of :meth:`ErrorModel.empirical`);
3. pre-train Φ/Γ, then C, on ``pose_priors`` (COCO-17 + MPII-16 + LSP-14 mapped to
   COCO-17 by name) with the distal joints perturbed by sampled base errors;
4. fine-tune on the base's real predictions on LSPET-train (holdout excluded);
5. evaluate on the holdout and on LSPET-test: distal error (heatmap px), COCO AP through
   the base codec (the head's own ``refine`` + ``write_back`` + ``decode``), with and
   without test-time adaptation; CPU latency per instance at batch 32.

Example:
    nice -n 10 python tools/scai_lite.py \
        --base-ckpt work_dirs/benchmark/base/best_coco_AP_epoch_3.pth
"""
import argparse
import contextlib
import glob
import io
import json
import os
import os.path as osp
import re
import time
from dataclasses import replace

import mmpose_scai  # noqa: F401  (shims first)
import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint, save_checkpoint

from mmpose.registry import MODELS
from mmpose_scai.adaptation import TestTimeAdapter
from mmpose_scai.cost import refinement_latency
from mmpose_scai.models.lite_prior import (ErrorModel, base_error_model, collect_points,
                                           evaluate_points, fit, load_pose_priors,
                                           point_batches, prior_batches)

CONFIG = 'configs/body_2d_keypoint/scai/lspet/td-hm_res18_scai-lite-1xb32_lspet-128x96.py'


def newest_base_ckpt(pattern='work_dirs/benchmark/base/*.pth'):
    def epoch(p):
        m = re.search(r'epoch_(\d+)', p)
        return int(m.group(1)) if m else -1
    found = sorted(glob.glob(pattern), key=epoch)
    return found[-1] if found else None


def split_loader(cfg, split, limit=None):
    from mmengine.runner import Runner
    if split == 'test':
        ds = dict(cfg.test_dataloader.dataset)
    else:  # 'holdout' (validation) or 'train' (LSPET-train minus the holdout)
        ds = dict(cfg.val_dataloader.dataset, part=split)
    pipeline = [p for p in ds['pipeline'] if p['type'] != 'PackPoseInputs']
    pipeline += [dict(type='GenerateTarget', encoder=cfg.codec), dict(type='PackPoseInputs')]
    ds.update(pipeline=pipeline, test_mode=False, bbox_file=None)
    if limit:
        ds['indices'] = limit
    return Runner.build_dataloader(dict(
        batch_size=32, num_workers=0, persistent_workers=False, drop_last=False,
        sampler=dict(type='DefaultSampler', shuffle=False), dataset=ds))


def coco_ap(cfg, head, heatmaps, meta, dataset_meta, prefix):
    """AP of decoded heatmaps on LSPET-test through MMPose's CocoMetric."""
    from mmpose.evaluation.metrics import CocoMetric
    kpts, scores = [], []
    for i in range(0, len(heatmaps), 256):
        for p in head.base_head.decode(heatmaps[i:i + 256].float()):
            kpts.append(np.asarray(p.keypoints, np.float64)[0])
            scores.append(np.asarray(p.keypoint_scores, np.float64)[0])
    kpts = np.stack(kpts)
    scale, centre = meta['input_scale'][:, None], meta['input_center'][:, None]
    kpts = kpts / meta['input_size'][:, None] * scale + centre - 0.5 * scale
    metric = CocoMetric(ann_file=cfg.test_evaluator.ann_file, outfile_prefix=prefix)
    metric.dataset_meta = dataset_meta
    samples = [dict(id=int(meta['id'][i]), img_id=int(meta['img_id'][i]),
                    category_id=int(meta['category_id'][i]),
                    pred_instances=dict(keypoints=kpts[i:i + 1].astype(np.float32),
                                        keypoint_scores=np.asarray(scores[i:i + 1],
                                                                   np.float32)),
                    gt_instances=dict(bbox_scores=np.asarray([meta['bbox_scores'][i]]),
                                      bbox_scales=meta['bbox_scales'][i:i + 1]))
               for i in range(len(kpts))]
    with contextlib.redirect_stdout(io.StringIO()):
        metric.process([], samples)
        return dict(metric.compute_metrics(metric.results))


def refined_heatmaps(head, heatmaps, test_cfg, batch=32):
    out = []
    for i in range(0, len(heatmaps), batch):
        hm = heatmaps[i:i + batch].float()
        if head.adapter is None:
            with torch.no_grad():
                out.append(head.refine(hm, None, test_cfg)[0])
        else:
            out.append(head.refine(hm, None, test_cfg)[0].detach())
    return torch.cat(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--base-ckpt', default='auto',
                        help='"auto": newest in work_dirs/benchmark/base; "none": no base')
    parser.add_argument('--work-dir', default='work_dirs/scai_lite')
    parser.add_argument('--train-limit', type=int, default=3000)
    parser.add_argument('--test-limit', type=int, default=None)
    parser.add_argument('--prior-epochs', type=int, nargs=2, default=(8, 4))
    parser.add_argument('--finetune-epochs', type=int, nargs=3, default=(6, 6, 4))
    parser.add_argument('--perturb', default='distal', choices=('distal', 'all'))
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--thresholds', nargs='+', default=(None, 0.5, 0.3, 0.2, 0.1, 0.05),
                        type=lambda v: None if v == 'None' else float(v),
                        help='max_distal_score candidates (selective correction)')
    parser.add_argument('--starts', nargs='+', default=('phi', 'base'),
                        help='start modes trained and compared on the holdout')
    parser.add_argument('--skip-ap', action='store_true')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    np.random.seed(0)
    os.makedirs(args.work_dir, exist_ok=True)
    t_all = time.perf_counter()
    results = dict(args=vars(args))

    def log(msg):
        print(f'[{time.perf_counter() - t_all:7.1f}s] {msg}', flush=True)

    cfg = Config.fromfile(args.config)
    ckpt = newest_base_ckpt() if args.base_ckpt == 'auto' else args.base_ckpt
    ckpt = None if ckpt in (None, 'none') else ckpt
    results['base_ckpt'] = ckpt
    log(f'base checkpoint: {ckpt}')
    model = MODELS.build(cfg.model)
    if ckpt:
        load_checkpoint(model, ckpt, map_location='cpu', logger='silent')
    model.eval()
    size = tuple(cfg.codec['heatmap_size'])

    # 1. base points per split
    points = {}
    tag = osp.splitext(osp.basename(ckpt))[0] if ckpt else 'nobase'
    for split, limit in (('holdout', None), ('train', args.train_limit),
                         ('test', args.test_limit)):
        path = osp.join(args.work_dir, f'points_{split}_{tag}.pth')
        if osp.exists(path):
            points[split] = torch.load(path, weights_only=False)
            continue
        if not ckpt and split != 'test':
            continue
        t0 = time.perf_counter()
        loader = split_loader(cfg, split, limit)
        points[split] = collect_points(model, loader, keep_heatmaps=split == 'test')
        points[split]['dataset_meta'] = {
            k: v for k, v in loader.dataset.metainfo.items()
            if k in ('dataset_name', 'num_keypoints', 'sigmas', 'flip_indices',
                     'keypoint_id2name', 'keypoint_name2id', 'CLASSES')}
        torch.save(points[split], path)
        log(f'collected {split}: {len(points[split]["pred"])} instances in '
            f'{time.perf_counter() - t0:.1f}s')

    # 2. error model
    errors = base_error_model(points['holdout']) if ckpt else ErrorModel.empirical(17, size)
    results['error_model'] = errors.summary()
    log(f'error model: {results["error_model"]}')
    priors = load_pose_priors()
    results['priors'] = {s: int((priors['source'] == s).sum())
                         for s in np.unique(priors['source'])}

    def train_variant(start):
        """3.-4.: a fresh lite head (start mode ``start``): priors, then fine-tuning."""
        torch.manual_seed(0)
        cfg_v = Config.fromfile(args.config)
        cfg_v.model.head.refiner.start = start
        m = MODELS.build(cfg_v.model)
        if ckpt:
            load_checkpoint(m, ckpt, map_location='cpu', logger='silent')
        h, r = m.head, m.head.refiner
        res = {}
        res['prior_history'] = fit(
            h, lambda e: prior_batches(priors, r, errors, size, seed=e,
                                       perturb=args.perturb),
            args.prior_epochs[0], 'pretrain', log=log) + fit(
            h, lambda e: prior_batches(priors, r, errors, size, seed=100 + e,
                                       perturb=args.perturb),
            args.prior_epochs[1], 'correct', lr=4.1e-4, log=log)
        h.chain_labelled.fill_(0)
        if 'train' in points:  # chains whose D is ever labelled in LSPET-train
            _, tgt = next(point_batches(points['train'], r, size, 10**6, seed=None))
            h.chain_labelled += tgt.mask.sum(0).float()
        else:
            h.chain_labelled.fill_(1)

        def evaluate(name):
            out = {}
            for split in ('holdout', 'test'):
                if split in points:
                    out[split] = evaluate_points(
                        r, point_batches(points[split], r, size, 256, seed=None,
                                         enabled=h.enabled_chains()), size)
            log(f'[start={start}] {name}: ' + json.dumps(out))
            return out

        res['eval_prior_only'] = evaluate('prior only')
        if 'train' in points:
            train = points['train']
            p, c, mr = args.finetune_epochs
            res['finetune_history'] = (
                fit(h, lambda e: point_batches(train, r, size, 128, seed=e), p,
                    'pretrain', lr=3e-4, log=log)
                + fit(h, lambda e: point_batches(train, r, size, 128, seed=50 + e), c,
                      'correct', lr=2e-4, log=log)
                + fit(h, lambda e: point_batches(train, r, size, 128, seed=90 + e), mr,
                      'multi_round', lr=1e-4, log=log))
            res['eval_finetuned'] = evaluate('fine-tuned')
        return m, res

    variants, models = {}, {}
    for start in args.starts:
        models[start], variants[start] = train_variant(start)
    results['variants'] = variants

    def selected(split, m, thr):
        """Batches of ``split`` refining only chains with a base D score below ``thr``
        (the loss mask, i.e. the evaluated chains, does not depend on ``thr``)."""
        h, r = m.head, m.head.refiner
        for inp, tgt in point_batches(points[split], r, size, 256, seed=None,
                                      enabled=h.enabled_chains()):
            if thr is not None:
                inp = replace(inp, valid=inp.valid & (inp.context['scores'][:, :, 3] < thr))
            yield inp, tgt

    # choose the start mode and the selective-correction threshold on the holdout
    grid = {}
    val_split = 'holdout' if 'holdout' in points else None
    for start in args.starts:
        for thr in args.thresholds:
            if val_split:
                grid[f'{start}/{thr}'] = evaluate_points(
                    models[start].head.refiner,
                    selected(val_split, models[start], thr), size)
    results['holdout_grid'] = grid
    for k, v in grid.items():
        log(f'holdout {k}: base_oks={v["base_oks"]:.4f} refined_oks={v["refined_oks"]:.4f} '
            f'base_px={v["base_px"]:.3f} refined_px={v["refined_px"]:.3f}')
    if grid:
        best = max(grid, key=lambda k: grid[k]['refined_oks'])
        chosen, thr = best.split('/')
        thr = None if thr == 'None' else float(thr)
    else:  # no validation split: no selection (never select on the test split)
        chosen, thr = args.starts[0], args.thresholds[0]
    results['chosen'] = dict(start=chosen, max_distal_score=thr)
    log(f'chosen on the validation holdout: start={chosen} max_distal_score={thr}')
    model = models[chosen].eval()
    head = model.head
    results['test_points'] = evaluate_points(head.refiner, selected('test', model, thr),
                                             size)
    head.refiner.max_distal_score = thr  # from here on: the head refines selectively
    log('test (chosen): ' + json.dumps(results['test_points']))

    ckpt_out = osp.join(args.work_dir, 'scai_lite.pth')
    save_checkpoint(dict(state_dict=model.state_dict(),
                         meta=dict(base_ckpt=ckpt, config=args.config, start=chosen,
                                   max_distal_score=thr)),
                    ckpt_out)
    results['checkpoint'] = ckpt_out

    # 5. AP on LSPET-test through the base codec, with and without TTA
    test = points['test']
    hms = test['heatmaps']
    if not args.skip_ap:
        prefix = osp.join(args.work_dir, 'coco')
        ap = dict(base=coco_ap(cfg, head, hms, test['meta'], test['dataset_meta'], prefix))
        tc = dict(refine=True, rounds=1, tol=1e-3)
        t0 = time.perf_counter()
        ap['lite'] = coco_ap(cfg, head, refined_heatmaps(head, hms, tc), test['meta'],
                             test['dataset_meta'], prefix)
        ap['lite_seconds'] = time.perf_counter() - t0
        head.adapter = TestTimeAdapter.from_cfg(dict())
        t0 = time.perf_counter()
        ap['lite_tta'] = coco_ap(cfg, head, refined_heatmaps(head, hms, tc), test['meta'],
                                 test['dataset_meta'], prefix)
        ap['lite_tta_seconds'] = time.perf_counter() - t0
        ap['tta_history_mean'] = {k: float(np.mean([h[k] for h in head.adapter.history]))
                                  for k in head.adapter.history[0]}
        head.adapter = None
        results['ap_test'] = ap
        log('AP test: ' + json.dumps({k: (v.get('AP', v) if isinstance(v, dict) else v)
                                      for k, v in ap.items()}))

    # 6. latency (batch 32, excluding the base), real test heatmaps
    results['latency'] = refinement_latency(head, hms[:32].float(), repeat=30,
                                            tta=dict())
    log('latency: ' + json.dumps(results['latency']))
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1, default=str)
    log(f'wrote {args.work_dir}/results.json')


if __name__ == '__main__':
    main()
