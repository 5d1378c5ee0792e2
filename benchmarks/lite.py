"""SCAI-Lite in the benchmark: train the coordinate refiner, tune it on val, time it.

:func:`run_lite` is :meth:`Pipeline.step_lite`. On the cached base outputs it

1. measures the base's per-keypoint errors on the validation split (the 500-image
   holdout; decoded peaks of the cached plain heatmaps vs the ground truth in heatmap
   pixels) -> :class:`~benchmarks.lite_prior.ErrorModel`;
2. runs the base once over a seeded subset of LSPET-train minus the holdout and keeps
   only the decoded points (``e<N>/cache/train<n>_s<seed>_points.pt``);
3. per start mode (``'phi'``, ``'base'``): pre-trains Φ/Γ, then C, on the pose priors
   (``pose_priors/`` under the data root; skipped, and said so, where they are absent)
   with the distal joints perturbed by sampled base errors, then fine-tunes on the base
   predictions of step 2; saves an ordinary checkpoint of the whole model
   (``e<N>/lite/lite_<start>.pth``);
4. picks the start mode and the selective-correction threshold ``max_distal_score``, then
   the TTA selection / safeguard, by AP on the validation split only (rows cached under
   ``e<N>/lite/rows/val``);
5. times the refinement at batch 32 on real test heatmaps, without and with TTA
   (:func:`~benchmarks.cost.refinement_latency`, one thread by default; measured on
   every run, never cached), for the chosen selection and with every chain refined.

The rows on LSPET-test and the COCO sample (:func:`lite_variants`) then run through the
same :meth:`Pipeline.evaluate`, :func:`~.methods.run_variant` and
:class:`~mmpose_scai.tta.TestTimeAdapter` as the heatmap variant's rows.
"""
import hashlib
import json
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from mmpose_scai.models.utils.heatmaps import heatmap_peaks
from .data_root import repo_root
from .cache import build_loader, build_model, cache_split
from .methods import Variant

LITE_CONFIG = osp.join('configs', 'body_2d_keypoint', 'scai', 'lspet',
                       'td-hm_res18_scai-lite-1xb32_lspet-128x96.py')
#: Row-cache key of the lite rows (``Variant.extra['rows']``).
ROWS_KEY = 'lite'


@dataclass
class LiteSettings:
    """What :func:`run_lite` trains and measures (``Settings.lite`` overrides these).

    Attributes:
        config (str): The SCAI-Lite config (relative paths: to the repository root).
        train_images (int): Base predictions on this many LSPET-train instances (a
            seeded subset of the part without the holdout) for fine-tuning.
        prior_epochs (tuple): Epochs on the pose priors: Φ/Γ, then C.
        finetune_epochs (tuple): Epochs on the base predictions: Φ/Γ, C, multi-round.
        starts (tuple): Start modes trained and compared on the validation split.
        thresholds (tuple): ``max_distal_score`` candidates (None: every chain).
        perturb (str): Which prior joints get sampled base errors (``'distal'``/``'all'``).
        latency_batch (int): Instances per timed batch.
        latency_repeat (int): Timed repetitions (median reported).
        latency_threads (int, optional): torch intra-op threads while timing (None:
            as set). One by default: the refinement's tensors are too small to gain
            from threads, and on a shared machine extra threads mostly measure the
            contention.
    """
    config: str = LITE_CONFIG
    train_images: int = 3000
    prior_epochs: Tuple[int, int] = (8, 4)
    finetune_epochs: Tuple[int, int, int] = (6, 6, 4)
    starts: Tuple[str, ...] = ('phi', 'base')
    thresholds: Tuple[Optional[float], ...] = (None, 0.5, 0.3, 0.2, 0.1)
    perturb: str = 'distal'
    latency_batch: int = 32
    latency_repeat: int = 30
    latency_threads: Optional[int] = 1

    def tag(self) -> str:
        """``lite`` for the default training, else ``lite_<hash>`` of the settings that
        change the models or the choices (runs never mix; timing settings do not
        count)."""
        key = {k: v for k, v in asdict(self).items() if not k.startswith('latency')}
        if key == {k: v for k, v in asdict(LiteSettings()).items()
                   if not k.startswith('latency')}:
            return 'lite'
        key = json.dumps(key, sort_keys=True, default=str)
        return 'lite_' + hashlib.sha1(key.encode()).hexdigest()[:8]


def resolve_config(path: str) -> str:
    """A config path as given, or relative to the repository root."""
    if osp.isabs(path) or osp.exists(path):
        return path
    return osp.join(repo_root(), path)


# ------------------------------------------------------------------ base points
def cache_points(cache: dict, heatmap_size: Sequence[int]) -> dict:
    """Decoded base peaks and ground truth of a cached split, in heatmap pixels.

    Args:
        cache (dict): From :func:`~.cache.cache_split` (plain ``heatmaps`` and ``meta``).
        heatmap_size (tuple): The codec's (w, h).

    Returns:
        dict: ``pred`` (Tensor[N, K, 2]), ``scores`` (Tensor[N, K], clamped to [0, 1]),
        ``gt`` (Tensor[N, K, 2]: the labels mapped into the heatmap frame of the
        top-down crop), ``weight`` (Tensor[N, K]: labelled and inside the frame) and
        ``heatmap_size``.
    """
    pred, scores = [], []
    for i in range(0, len(cache['heatmaps']), 256):
        c, m = heatmap_peaks(cache['heatmaps'][i:i + 256].float())
        pred.append(c)
        scores.append(m.clamp(0, 1))
    meta = cache['meta']
    w, h = heatmap_size
    scale = meta['input_scale'][:, None].astype(np.float64)
    centre = meta['input_center'][:, None].astype(np.float64)
    gt = (meta['gt_keypoints'] - centre + 0.5 * scale) / scale * np.array([w, h])
    inside = ((gt >= -0.5) & (gt <= np.array([w, h]) - 0.5)).all(-1)
    weight = (meta['gt_visible'] > 0) & inside & np.isfinite(gt).all(-1)
    return dict(pred=torch.cat(pred), scores=torch.cat(scores),
                gt=torch.from_numpy(np.nan_to_num(gt).astype(np.float32)),
                weight=torch.from_numpy(weight.astype(np.float32)),
                heatmap_size=(int(w), int(h)))


def train_points(pipeline, n: int) -> dict:
    """Base points on a seeded subset of ``n`` instances of LSPET-train minus the
    holdout (the base runs once, plain pass; only the points are cached)."""
    from mmpose.registry import DATASETS

    s = pipeline.s
    path = pipeline.edir('cache', f'train{n}_s{s.seed}_points.pt')
    if osp.exists(path):
        return torch.load(path, map_location='cpu', weights_only=False)
    cfg = pipeline.cfg('base')
    model = build_model(cfg, pipeline.report['base']['checkpoint'])  # registers scopes
    ds = dict(cfg.val_dataloader.dataset, part='train', test_mode=True, bbox_file=None)
    total = len(DATASETS.build(ds))
    idx = np.random.default_rng(s.seed).permutation(total)[:min(n, total)]
    ds['indices'] = sorted(int(i) for i in idx)
    loader = build_loader(cfg, ds, s.batch_size, s.num_workers)
    last = [0.]

    def progress(done, total):
        if time.perf_counter() - last[0] > 20 or done == total:
            last[0] = time.perf_counter()
            pipeline.log(f'cache train (lite): {done}/{total}')

    cache = cache_split(model, loader, None, flip=False, feats=False, progress=progress)
    size = tuple(cache['heatmaps'].shape[-1:-3:-1])
    pts = cache_points(cache, size)
    pts.update(seconds=cache['seconds'], n_total=total)
    os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save(pts, path + '.tmp')
    os.replace(path + '.tmp', path)
    return pts


# --------------------------------------------------------------------- training
def train_lite(head, train_pts: Optional[dict], priors: Optional[dict], errors,
               size: Sequence[int], ls: LiteSettings, log=None) -> dict:
    """Pre-train on the priors (if any), then fine-tune on the base predictions.

    Also sets ``head.chain_labelled`` from the labels of ``train_pts`` (chains whose D
    is never labelled, the face on LSPET, stay off).

    Returns:
        dict: the loss history per phase.
    """
    from .lite_prior import fit, point_batches, prior_batches

    r = head.refiner
    hist = {}
    if priors is not None:
        p, c = ls.prior_epochs
        hist['prior'] = (
            fit(head, lambda e: prior_batches(priors, r, errors, size, seed=e,
                                              perturb=ls.perturb), p, 'pretrain', log=log)
            + fit(head, lambda e: prior_batches(priors, r, errors, size, seed=100 + e,
                                                perturb=ls.perturb), c, 'correct',
                  lr=4.1e-4, log=log))
    head.chain_labelled.fill_(0)
    _, tgt = next(point_batches(train_pts, r, size, 10**9, seed=None))
    head.chain_labelled += tgt.mask.sum(0).float()
    bs = min(128, len(train_pts['pred']))
    p, c, m = ls.finetune_epochs
    hist['finetune'] = (
        fit(head, lambda e: point_batches(train_pts, r, size, bs, seed=e), p, 'pretrain',
            lr=3e-4, log=log)
        + fit(head, lambda e: point_batches(train_pts, r, size, bs, seed=50 + e), c,
              'correct', lr=2e-4, log=log)
        + fit(head, lambda e: point_batches(train_pts, r, size, bs, seed=90 + e), m,
              'multi_round', lr=1e-4, log=log))
    return hist


def _priors(pipeline) -> Tuple[Optional[dict], str]:
    """The pose priors beside the benchmark's data (None where absent)."""
    from .lite_prior import PRIOR_FILES, load_pose_priors

    lspet = osp.normpath(pipeline.cfg('base').test_dataloader.dataset.data_root)
    root = osp.dirname(lspet)
    folder = osp.join(root, 'pose_priors')
    if not all(osp.exists(osp.join(folder, f)) for f in PRIOR_FILES.values()):
        return None, 'pose_priors not found under the data root: no prior pre-training'
    return load_pose_priors(root), 'pose_priors (COCO-17 + MPII-16 + LSP-14)'


# ------------------------------------------------------------------------ step
def lite_variants(chosen: dict) -> List[Variant]:
    """The rows of SCAI-Lite (chosen on val), next to the heatmap variant's.

    Args:
        chosen (dict): ``start``, ``max_distal_score`` and ``tta`` (from
            :func:`run_lite`).
    """
    thr = chosen['max_distal_score']
    sr = dict(model=f'lite_{chosen["start"]}', start=chosen['start'])

    def ex(t=thr):
        return dict(refiner=dict(max_distal_score=t), rows=ROWS_KEY)

    sel = f'max_distal_score={thr}'
    tta = chosen['tta']
    rows = [
        Variant('+SCAI-Lite', **sr, extra=ex(), note=f'coordinate MLPs, no TTA; {sel}'),
        Variant('+SCAI-Lite+flip', flip=True, **sr, extra=ex()),
        Variant('+SCAI-Lite+TTA', tta=tta, **sr, extra=ex(),
                note='the same TestTimeAdapter, tuned on val'),
        Variant('+SCAI-Lite+TTA+flip', flip=True, tta=tta, **sr, extra=ex()),
    ]
    if thr is not None:
        rows.append(Variant('SCAI-Lite switch: every chain', **sr, extra=ex(None),
                            note='no score selection (max_distal_score=None); no TTA'))
    return rows


def run_lite(pipeline) -> dict:
    """Train, tune (val only) and time SCAI-Lite; see the module docstring.

    Args:
        pipeline (Pipeline): After :meth:`~Pipeline.step_cache`.

    Returns:
        dict: ``chosen``, ``grid``/``tta_grid`` (val), ``checkpoints``, ``latency``,
        ``training`` (data, error model, losses) and ``work_dir``.
    """
    from mmengine.runner import save_checkpoint

    from .cost import refinement_latency
    from .lite_prior import base_error_model

    p, s = pipeline, pipeline.s
    ls = LiteSettings(**(s.lite or {}))
    ldir = p.edir(ls.tag())
    os.makedirs(ldir, exist_ok=True)
    p.row_roots[ROWS_KEY] = osp.join(ldir, 'rows')
    cfg = p.cfg('lite')
    size = tuple(cfg.codec['heatmap_size'])
    info_path = osp.join(ldir, 'lite.json')
    info = {}
    if osp.exists(info_path):
        with open(info_path) as f:
            info = json.load(f)

    # 1.-3. error model, training data, one model per start mode
    ckpts = {st: osp.join(ldir, f'lite_{st}.pth') for st in ls.starts}
    if not all(osp.exists(c) for c in ckpts.values()) or 'training' not in info:
        torch.manual_seed(s.seed)
        np.random.seed(s.seed)
        errors = base_error_model(cache_points(p.caches['val'], size))
        n = min(ls.train_images, s.limit) if s.limit else ls.train_images
        t0 = time.perf_counter()
        tp = train_points(p, n)
        priors, prior_note = _priors(p)
        training = dict(
            error_model=errors.summary(), train_instances=int(len(tp['pred'])),
            train_cache_seconds=round(float(tp.get('seconds', 0.)), 1),
            priors=prior_note,
            prior_poses=({str(k): int((priors['source'] == k).sum())
                          for k in np.unique(priors['source'])} if priors else {}),
            history={})
        p.log(f'lite: error model {training["error_model"]}; {training["train_instances"]}'
              f' train instances ({time.perf_counter() - t0:.0f} s); {prior_note}')
        for st, ckpt in ckpts.items():
            t0 = time.perf_counter()
            torch.manual_seed(s.seed)
            np.random.seed(s.seed)
            model = build_model(cfg, p.report['base']['checkpoint'])
            model.head.refiner.start_mode = st
            hist = train_lite(model.head, tp, priors, errors, size, ls)
            model.head.refiner.start_mode = 'phi'
            save_checkpoint(dict(state_dict=model.state_dict(),
                                 meta=dict(start=st, base=p.report['base']['checkpoint'])),
                            ckpt)
            last = {ph: h[-1] for ph, h in hist.items() if h}
            training['history'][st] = dict(last=last, seconds=time.perf_counter() - t0)
            p.log(f'lite start={st}: trained in {time.perf_counter() - t0:.0f} s; '
                  f'last losses {json.dumps(last)}')
        info = dict(settings=asdict(ls), training=training)
        with open(info_path, 'w') as f:
            json.dump(info, f, indent=1, default=str)
    for st, ckpt in ckpts.items():
        p.report.setdefault('scai_checkpoints', {})[f'lite_{st}'] = ckpt
        p.model_configs[f'lite_{st}'] = 'lite'

    # 4. choices on the validation split only
    if 'chosen' not in info:
        grid = []
        for st in ls.starts:
            for thr in ls.thresholds:
                v = Variant(f'lite tune start={st} max_distal_score={thr}',
                            model=f'lite_{st}', start=st,
                            extra=dict(refiner=dict(max_distal_score=thr), rows=ROWS_KEY))
                r = p.evaluate('val', v)
                grid.append(dict(start=st, max_distal_score=thr, AP=r['AP'], pck=r['pck'],
                                 distal_err=r['distal_err'],
                                 corrected_frac=r.get('corrected_frac')))
                p.log(f'val {v.name}: AP {r["AP"]:.4f} distal {r["distal_err"]:.3f}')
        best = max(grid, key=lambda g: (g['AP'], -g['distal_err']))
        tta_grid, tb = p.tune_tta(
            'lite tune tta', model=f'lite_{best["start"]}', start=best['start'],
            extra=dict(refiner=dict(max_distal_score=best['max_distal_score']),
                       rows=ROWS_KEY))
        info.update(grid=grid, tta_grid=tta_grid, chosen=dict(
            start=best['start'], max_distal_score=best['max_distal_score'],
            tta=dict(preset='default', select_quantile=tb['select_quantile'],
                     safeguard=tb['safeguard'])))
        with open(info_path, 'w') as f:
            json.dump(info, f, indent=1, default=str)
    ch = info['chosen']
    p.log(f'lite chosen on val: {ch}')

    # 5. latency (batch 32 of real test heatmaps, excluding the base), every run
    head = p.head(f'lite_{ch["start"]}')
    hms = p.caches['test']['heatmaps'][:ls.latency_batch].float()
    latency = {}
    saved = head.refiner.start_mode, head.refiner.max_distal_score
    threads = torch.get_num_threads()
    try:
        if ls.latency_threads:
            torch.set_num_threads(ls.latency_threads)
        head.refiner.start_mode = ch['start']
        for name, thr in (('chosen', ch['max_distal_score']), ('every_chain', None)):
            head.refiner.max_distal_score = thr
            latency[name] = refinement_latency(head, hms, repeat=ls.latency_repeat,
                                               tta=ch['tta'])
            lt = latency[name]
            p.log(f'lite latency ({name}, batch {lt["batch"]}, {lt["threads"]} threads, '
                  f'{100 * lt["refined_frac"]:.0f} % chains refined): '
                  f'{lt["ms_per_instance"]:.3f} ms/instance, with TTA '
                  f'{lt["tta_ms_per_instance"]:.3f} ms/instance')
    finally:
        head.refiner.start_mode, head.refiner.max_distal_score = saved
        torch.set_num_threads(threads)
    return dict(info, latency=latency, checkpoints=ckpts, work_dir=ldir,
                config=cfg.filename)


# Config of a lite model: the base's overrides apply (same backbone and head).
def lite_config(pipeline):
    """The SCAI-Lite config with the settings' SCAI overrides."""
    from mmengine.config import Config

    ls = LiteSettings(**(pipeline.s.lite or {}))
    cfg = Config.fromfile(resolve_config(ls.config))
    if pipeline.s.scai_cfg_options:
        cfg.merge_from_dict(pipeline.s.scai_cfg_options)
    return cfg


__all__ = ['LITE_CONFIG', 'LiteSettings', 'cache_points', 'lite_config', 'lite_variants',
           'run_lite', 'train_lite', 'train_points']
