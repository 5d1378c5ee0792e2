"""The demo job (``make demo``): base vs +SCAI vs +SCAI+TTA on real photos.

1. **Models.** The benchmark's cached checkpoints (``work_dirs/benchmark/report.json``:
   ``base.checkpoint`` and ``scai_checkpoints.scai``, paths relative to the repository)
   when they exist; otherwise a tiny base and SCAI are trained for a few minutes with
   MMEngine's Runner on LSPET-train (a seeded subset; with only the embedded demo
   subset, on its first LSPET test images), and every number is marked illustrative.
2. **Evaluation.** The base runs once over a small LSPET-test subset and the COCO
   sample (12 limb joints); the rows are decoded by the base codec and scored with
   MMPose's ``CocoMetric`` plus PCK@0.2 and the distal error, with the benchmark's
   functions (``benchmarks``).
3. **Overlays.** Base | SCAI | ground truth, drawn with MMPose's
   ``PoseLocalVisualizer``, for the instances whose keypoints SCAI moved most.

Progress is printed at least every few seconds (the Runner's log interval is small).
"""
import json
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .data_root import is_demo_root, repo_root, resolve_data_root

BASE_CONFIG = 'configs/body_2d_keypoint/topdown_heatmap/lspet/td-hm_res18_1xb32-6e_lspet-128x96.py'
SCAI_CONFIG = 'configs/body_2d_keypoint/scai/lspet/td-hm_res18_scai-1xb32-6e_lspet-128x96.py'
#: rows of the comparison table: (name, uses the SCAI refinement, test-time adaptation)
ROWS = (('base', False, False), ('+SCAI', True, False), ('+SCAI+TTA', True, True))


@dataclass
class DemoSettings:
    """What the demo runs; the defaults take a few minutes on 2 CPU cores.

    Attributes:
        work_dir: Outputs (trained checkpoints, rows, ``vis/``, ``demo.json``).
        benchmark_dir: Where ``tools/benchmark.py`` caches its checkpoints.
        use_benchmark: Reuse them when present.
        data_root: Data root (None: :func:`resolve_data_root`).
        train_images: LSPET-train images for the tiny models (demo subset: at most
            its first 14 LSPET test images).
        base_epochs: Epochs of the tiny base.
        scai_stages: Epochs of SCAI's stages (Φ/Γ pre-training, correction, rounds).
        test_images: LSPET-test persons evaluated (demo subset: its last 6).
        coco: Also evaluate the COCO sample (cross-dataset, 12 limb joints).
        rounds, start, tta: SCAI test settings; the benchmark's tuned ones are used
            when its report is reused.
        num_vis: Overlays written.
        log_interval: Runner log interval in iterations (progress lines).
        num_workers: Dataloader workers.
    """
    work_dir: str = osp.join('work_dirs', 'demo')
    benchmark_dir: str = osp.join('work_dirs', 'benchmark')
    use_benchmark: bool = True
    data_root: Optional[str] = None
    train_images: int = 640
    base_epochs: int = 3
    scai_stages: Dict[str, int] = field(default_factory=lambda: dict(
        pretrain_epochs=1, correct_epochs=1, multi_epochs=1, max_rounds=3))
    test_images: int = 200
    coco: bool = True
    rounds: int = 3
    start: Optional[str] = None
    tta: Dict = field(default_factory=lambda: dict(preset='default'))
    num_vis: int = 6
    log_interval: int = 3
    num_workers: int = 2
    batch_size: int = 32
    seed: int = 0


def _abs(path: str) -> str:
    """``path`` made absolute, relative paths taken from the repository root."""
    return osp.normpath(path if osp.isabs(path) else osp.join(repo_root(), path))


def _rel(path: str) -> str:
    """A path relative to the repository where it lies inside it."""
    rel = osp.relpath(osp.abspath(path), repo_root())
    return path if rel.startswith('..') else rel


# ------------------------------------------------------------------ 1. the models
def cached_models(benchmark_dir: str) -> Optional[Dict]:
    """The benchmark's base and SCAI checkpoints, or None where any is missing.

    Returns:
        dict: ``base`` and ``scai`` (absolute paths), ``test`` (tuned ``rounds``,
        ``start``, ``tta``; may be empty) and ``report`` (its path).
    """
    path = osp.join(_abs(benchmark_dir), 'report.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        report = json.load(f)
    base = (report.get('base') or {}).get('checkpoint')
    scai = (report.get('scai_checkpoints') or {}).get('scai')
    if not base or not scai:
        return None
    base, scai = _abs(base), _abs(scai)
    if not (osp.isfile(base) and osp.isfile(scai)):
        return None
    chosen = (report.get('tuning') or {}).get('chosen') or {}
    return dict(base=base, scai=scai, report=path,
                test={k: chosen[k] for k in ('rounds', 'start', 'tta') if k in chosen})


def _datasets(s: DemoSettings, data_root: str) -> Tuple[Dict, Dict]:
    """(train dataset override, test dataset override) for LSPET under ``data_root``."""
    lspet = osp.join(data_root, 'lspet')
    train_json = osp.join(lspet, 'annotations', 'train.json')
    if osp.isfile(train_json):
        # indices are positions in the training part (train.json minus the holdout;
        # one person per LSPET image)
        with open(train_json) as f:
            n_train = len(json.load(f)['images']) - 500
        rng = np.random.default_rng(s.seed)
        idx = np.sort(rng.permutation(n_train)[:s.train_images]).tolist()
        return dict(indices=idx), dict(indices=s.test_images)
    # embedded demo subset: 20 LSPET test images, split 14 for training / 6 for testing
    with open(osp.join(lspet, 'annotations', 'test.json')) as f:
        n = len(json.load(f)['annotations'])
    n_train = min(s.train_images, max(n - 6, 1))
    test_idx = list(range(n_train, min(n, n_train + s.test_images)))
    train = dict(type='CocoDataset', ann_file='annotations/test.json',
                 indices=list(range(n_train)))
    return train, dict(indices=test_idx)


def _runner_cfg(cfg, work_dir: str, s: DemoSettings, train_ds: Dict):
    """Common Runner settings of the two tiny trainings (no validation, few logs)."""
    cfg.work_dir = work_dir
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=s.log_interval)
    cfg.default_hooks.visualization = dict(type='PoseVisualizationHook', enable=False)
    cfg.randomness = dict(seed=s.seed)
    loader = cfg.train_dataloader
    loader.num_workers = s.num_workers
    loader.persistent_workers = s.num_workers > 0
    loader.dataset.update(train_ds)
    if train_ds.get('type') == 'CocoDataset':
        for k in ('part', 'holdout_size', 'holdout_seed'):
            loader.dataset.pop(k, None)
    return cfg


def train_tiny(s: DemoSettings, data_root: str, log: Callable[[str], None]) -> Dict:
    """Train (or reuse) a tiny base and SCAI on LSPET with MMEngine's Runner.

    Returns:
        dict: ``base`` and ``scai`` checkpoint paths and ``seconds``.
    """
    from mmengine.config import Config
    from mmengine.runner import Runner

    from .base import epoch_checkpoints
    from .train import scai_train_config, train_scai

    t0 = time.perf_counter()
    train_ds, _ = _datasets(s, data_root)
    wd = osp.join(_abs(s.work_dir), 'tiny')
    base_wd = osp.join(wd, 'base')
    ckpt = epoch_checkpoints(base_wd).get(s.base_epochs)
    if ckpt is None:
        n = len(train_ds['indices'])
        log(f'training a tiny base: ResNet-18 128x96 from scratch, {n} images, '
            f'{s.base_epochs} epochs')
        cfg = _runner_cfg(Config.fromfile(_abs(BASE_CONFIG)), base_wd, s, train_ds)
        iters = max(1, -(-n // cfg.train_dataloader.batch_size))
        cfg.train_cfg = dict(by_epoch=True, max_epochs=s.base_epochs, val_interval=1)
        cfg.param_scheduler = [
            dict(type='LinearLR', begin=0, end=min(20, iters), start_factor=0.1,
                 by_epoch=False),
            dict(type='CosineAnnealingLR', T_max=s.base_epochs, eta_min=1e-5,
                 by_epoch=True, begin=0, end=s.base_epochs)]
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1,
                                            max_keep_ckpts=1, save_best=None)
        Runner.from_cfg(cfg).train()
        ckpt = epoch_checkpoints(base_wd)[s.base_epochs]
    else:
        log(f'tiny base reused: {_rel(ckpt)}')
    stages = dict(s.scai_stages)
    cfg = scai_train_config(_abs(SCAI_CONFIG), osp.join(wd, 'scai'), ckpt, stages,
                            num_workers=s.num_workers, log_interval=s.log_interval,
                            seed=s.seed, name='demo_scai')
    cfg = _runner_cfg(cfg, cfg.work_dir, s, train_ds)
    log(f'training SCAI on the frozen tiny base: stages {stages}')
    res = train_scai(cfg, log)
    return dict(base=ckpt, scai=res['checkpoint'], seconds=time.perf_counter() - t0)


# --------------------------------------------------------------- 2. evaluation
def _subset_ann(src: str, img_ids, dst: str) -> str:
    """``src`` restricted to ``img_ids`` (COCO format), written to ``dst``."""
    with open(src) as f:
        data = json.load(f)
    keep = set(int(i) for i in img_ids)
    data['images'] = [im for im in data['images'] if im['id'] in keep]
    data['annotations'] = [a for a in data['annotations'] if a['image_id'] in keep]
    os.makedirs(osp.dirname(dst), exist_ok=True)
    with open(dst, 'w') as f:
        json.dump(data, f)
    return dst


def split_datasets(cfg, s: DemoSettings, data_root: str,
                   trained_here: bool = True) -> Dict[str, Dict]:
    """Dataset configs of the evaluated splits: ``lspet`` (test subset), ``coco``.

    ``trained_here``: the tiny models were trained on the demo subset's first LSPET
    images, so only the others are evaluated (benchmark models: the first
    ``test_images``).
    """
    test_ds = _datasets(s, data_root)[1] if trained_here else dict(indices=s.test_images)
    pipeline = cfg.test_dataloader.dataset.pipeline
    out = dict(lspet=dict(type='CocoDataset', data_mode='topdown',
                          data_root=osp.join(data_root, 'lspet') + '/',
                          ann_file='annotations/test.json', data_prefix=dict(img='images/'),
                          test_mode=True, bbox_file=None, pipeline=pipeline, **test_ds))
    coco = osp.join(data_root, 'coco_sample')
    if s.coco and osp.isdir(coco):
        out['coco'] = dict(type='CocoDataset', data_mode='topdown', data_root=coco + '/',
                           ann_file='annotations/person_keypoints.json',
                           data_prefix=dict(img='images/'), test_mode=True, bbox_file=None,
                           pipeline=pipeline)
    return out


def evaluate(scai_cfg, checkpoint: str, datasets: Dict[str, Dict], s: DemoSettings,
             test: Dict, log: Callable[[str], None]) -> Dict[str, Dict]:
    """Score base, +SCAI and +SCAI+TTA on each split.

    Args:
        scai_cfg: The SCAI config (its model holds the base).
        checkpoint (str): A trained SCAI checkpoint (base weights included).
        datasets (dict): Split name -> dataset config (see :func:`split_datasets`).
        test (dict): ``rounds``, ``start``, ``tta`` of the SCAI rows.

    Returns:
        dict: split -> ``rows`` (name -> metrics), ``keypoints`` (name ->
        ndarray[N, K, 2] in image pixels), ``meta`` (per-instance arrays),
        ``dataset`` (its config) and ``metainfo``.
    """
    from .analysis import score_keypoints
    from .cache import build_loader, build_model, cache_split, decode
    from .coco_eval import coco_evaluate, write_limb_only_ann
    from .methods import Variant, run_variant

    model = build_model(scai_cfg, checkpoint)
    head = model.head
    out = {}
    for split, ds in datasets.items():
        loader = build_loader(scai_cfg, ds, s.batch_size, 0)
        last = [time.perf_counter()]

        def progress(done, total, split=split):
            if time.perf_counter() - last[0] > 5 or done == total:
                last[0] = time.perf_counter()
                log(f'{split}: base forward {done}/{total}')

        cache = cache_split(model, loader, None, flip=False, progress=progress)
        meta = cache['meta']
        rdir = osp.join(_abs(s.work_dir), 'rows', split)
        ann = _subset_ann(osp.join(ds['data_root'], ds['ann_file']), meta['img_id'],
                          osp.join(rdir, 'gt.json'))
        if split == 'coco':
            ann = write_limb_only_ann(ann, osp.join(rdir, 'gt_limbs.json'))
        rows, kpts_of = {}, {}
        for name, refine, tta in ROWS:
            variant = Variant(name=name, model='scai', refine=refine,
                              rounds=test.get('rounds', s.rounds),
                              start=test.get('start', s.start),
                              tta=dict(test.get('tta') or s.tta) if tta else None)
            res = run_variant(head, cache, variant, s.batch_size)
            kpts, scores = decode(head, res['heatmaps'], meta)
            metrics, _, _ = coco_evaluate(ann, cache['dataset_meta'], meta, kpts, scores,
                                          osp.join(rdir, name.replace('+', 'p')))
            row = dict(AP=metrics['AP'], AP50=metrics['AP .5'], AR=metrics['AR'],
                       seconds=res['seconds'], **score_keypoints(kpts, meta))
            if res.get('E_s') is not None:
                valid = res['valid']
                row['corrected_frac'] = float((~res['use_base'] & valid).sum()
                                              / max(valid.sum(), 1))
            rows[name], kpts_of[name] = row, kpts
            log(f'{split} {name}: AP {100 * row["AP"]:.2f}, PCK@0.2 '
                f'{100 * row["pck"]:.1f} ({res["seconds"]:.1f} s)')
        out[split] = dict(rows=rows, keypoints=kpts_of, meta=meta, dataset=ds,
                          metainfo=loader.dataset.metainfo, n=len(meta['id']))
    return out


def table(results: Dict[str, Dict], illustrative: bool) -> str:
    """The comparison table (markdown), AP/AP50/AR/PCK in %, distal error ÷ torso."""
    lines = ['| split | n | row | AP | AP50 | AR | PCK@0.2 | distal PCK | distal err '
             '| corrected | s |', '|---|---|---|---|---|---|---|---|---|---|---|']
    for split, res in results.items():
        for name, r in res['rows'].items():
            corr = r.get('corrected_frac')
            lines.append(
                f'| {split} | {res["n"]} | {name} | {100 * r["AP"]:.2f} | '
                f'{100 * r["AP50"]:.2f} | {100 * r["AR"]:.2f} | {100 * r["pck"]:.1f} | '
                f'{100 * r["pck_distal"]:.1f} | {r["distal_err"]:.3f} | '
                f'{"–" if corr is None else f"{100 * corr:.0f} %"} | {r["seconds"]:.1f} |')
    if illustrative:
        lines.append('\nILLUSTRATIVE ONLY: tiny models trained for a few minutes here '
                     '(no benchmark checkpoints found); run `make benchmark` for real '
                     'numbers.')
    return '\n'.join(lines)


# ------------------------------------------------------------------ 3. overlays
def most_changed(before: np.ndarray, after: np.ndarray, k: int,
                 joints: Optional[List[int]] = None) -> List[int]:
    """Indices of the ``k`` instances whose keypoints moved most (mean L2, pixels).

    Args:
        before, after (ndarray[N, K, 2]): Keypoints of two rows.
        joints: Keypoints counted (None: all).
    """
    d = np.linalg.norm(after - before, axis=-1)
    if joints is not None:
        d = d[:, joints]
    shift = d.mean(-1)
    order = np.argsort(-shift, kind='stable')
    return [int(i) for i in order[:k] if shift[i] > 0]


def draw_overlays(res: Dict, after: str, out_dir: str, k: int,
                  log: Callable[[str], None], prefix: str = '') -> List[str]:
    """Write ``base | <after> | ground truth`` panels (``PoseLocalVisualizer``) of the
    ``k`` instances of one split that ``after`` changed most; returns the file names
    (``<prefix><rank>_img<img_id>_id<ann_id>.jpg``)."""
    import cv2
    import mmcv
    from mmengine.structures import InstanceData

    from mmpose.structures import PoseDataSample
    from mmpose.visualization import PoseLocalVisualizer

    from .metrics import LIMB_JOINTS

    meta, kp = res['meta'], res['keypoints']
    idx = most_changed(kp['base'], kp[after], k, list(LIMB_JOINTS))
    if not idx:
        log(f'{after} changed no instance: no overlay written')
        return []
    # the opencv backend calls int() on a 1-element array, an error with numpy 2
    vis = PoseLocalVisualizer(radius=2, line_width=1, backend='matplotlib')
    vis.set_dataset_meta(res['metainfo'])
    ds = res['dataset']
    img_dir = osp.join(ds['data_root'], ds['data_prefix']['img'])
    with open(osp.join(ds['data_root'], ds['ann_file'])) as f:
        files = {im['id']: im['file_name'] for im in json.load(f)['images']}
    os.makedirs(out_dir, exist_ok=True)
    limb = np.zeros(kp['base'].shape[1], np.float32)
    limb[list(LIMB_JOINTS)] = 1.
    written = []
    for rank, i in enumerate(idx):
        image = mmcv.imread(osp.join(img_dir, files[int(meta['img_id'][i])]),
                            channel_order='rgb')
        c, sc = meta['input_center'][i], meta['input_scale'][i]
        x0, y0 = np.maximum(np.floor(c - sc / 2).astype(int), 0)
        x1, y1 = np.ceil(c + sc / 2).astype(int)
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        panels = []
        for label, pts, scores in (
                ('base', kp['base'][i], limb), (after, kp[after][i], limb),
                ('ground truth', meta['gt_keypoints'][i],
                 meta['gt_visible'][i] * limb * (np.abs(meta['gt_keypoints'][i]).sum(-1) > 0))):
            sample = PoseDataSample()
            sample.pred_instances = InstanceData(
                keypoints=(pts - [x0, y0])[None].astype(np.float32),
                keypoint_scores=np.asarray(scores, np.float32)[None])
            vis.add_datasample(label, crop.copy(), sample, draw_gt=False, kpt_thr=0.5)
            panel = np.ascontiguousarray(vis.get_image())
            scale = 256. / panel.shape[0]
            panel = cv2.resize(panel, (max(1, int(panel.shape[1] * scale)), 256))
            cv2.putText(panel, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        (255, 255, 0), 1, cv2.LINE_AA)
            panels.append(panel)
        name = f'{prefix}{rank:02d}_img{int(meta["img_id"][i])}_id{int(meta["id"][i])}.jpg'
        mmcv.imwrite(np.concatenate(panels, 1)[..., ::-1], osp.join(out_dir, name))
        written.append(name)
    return written


# ------------------------------------------------------------------------ run
def run_demo(s: DemoSettings, log: Callable[[str], None] = print) -> Dict:
    """Models, evaluation, table and overlays; writes ``<work_dir>/demo.json``.

    Returns:
        dict: ``source`` (``'benchmark'`` or ``'tiny'``), ``illustrative``,
        ``checkpoints``, ``test`` settings, ``rows`` per split, ``table``,
        ``overlays`` and ``seconds``.
    """
    from mmengine.config import Config

    t0 = time.perf_counter()
    data_root = s.data_root or resolve_data_root()
    log(f'data root: {_rel(data_root)}' +
        (' (the embedded demo subset)' if is_demo_root(data_root) else ''))
    cached = cached_models(s.benchmark_dir) if s.use_benchmark else None
    if cached:
        log(f'reusing the benchmark checkpoints ({_rel(cached["report"])}): base '
            f'{_rel(cached["base"])}, SCAI {_rel(cached["scai"])}')
        ckpts, test, source = dict(base=cached['base'], scai=cached['scai']), \
            cached['test'], 'benchmark'
    else:
        log('no benchmark checkpoints: training tiny models (numbers are illustrative)')
        ckpts, test, source = train_tiny(s, data_root, log), {}, 'tiny'
    cfg = Config.fromfile(_abs(SCAI_CONFIG))
    datasets = split_datasets(cfg, s, data_root, trained_here=source == 'tiny')
    results = evaluate(cfg, ckpts['scai'], datasets, s, test, log)
    illustrative = source == 'tiny'
    text = table(results, illustrative)
    vis_dir = osp.join(_abs(s.work_dir), 'vis')
    if osp.isdir(vis_dir):  # overlays of an earlier run
        for name in os.listdir(vis_dir):
            if name.endswith('.jpg'):
                os.remove(osp.join(vis_dir, name))
    overlays = {split: draw_overlays(res, '+SCAI+TTA', vis_dir, s.num_vis if split ==
                                     'lspet' else max(s.num_vis // 3, 1), log, split + '_')
                for split, res in results.items()}
    out = dict(source=source, illustrative=illustrative,
               checkpoints={k: _rel(v) for k, v in ckpts.items() if isinstance(v, str)},
               test=dict(rounds=test.get('rounds', s.rounds),
                         start=test.get('start', s.start), tta=test.get('tta', s.tta)),
               rows={k: dict(n=v['n'], **v['rows']) for k, v in results.items()},
               table=text, overlays={k: [osp.join(_rel(vis_dir), n) for n in v]
                                     for k, v in overlays.items()},
               settings=asdict(s), seconds=round(time.perf_counter() - t0, 1))
    out['settings']['data_root'] = _rel(data_root)
    with open(osp.join(_abs(s.work_dir), 'demo.json'), 'w') as f:
        json.dump(out, f, indent=1, default=float)
    return out
