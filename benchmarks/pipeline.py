"""The benchmark pipeline: base -> caches -> SCAI training -> tuning -> rows -> report.

Every step writes its outputs under ``Settings.work_dir`` and is skipped when they are
already there, so an interrupted run picks up where it stopped. Everything after the
base is keyed by the base epoch (``e<N>/``), so a base that trained further later gets
its own caches and SCAI models instead of mixing with the old ones.

Layout of ``work_dir``::

    base/                 MMPose work dir of the base (epoch_N.pth, logs)
    base_curve.json       validation AP per base epoch (and test AP, report only)
    ann/                  derived annotation files (split subsets, COCO limb-only)
    e<N>/cache/<split>.pt base heatmaps (plain, flip-averaged), f and meta per split
    e<N>/<tag>/           one SCAI training setting, tag scai_n<images>_s<P>-<C>-<M>:
        scai/main/        SCAI trained on the frozen base (staged, Runner)
        scai/gamma_frozen/  ablation: stage 2 with Γ frozen (from main's stage-1 ckpt)
        rows/<split>/<row>.{json,npz,pkl}  one evaluated row
        tuning.json       the choices made on the validation split
    e<N>/cache/train<n>_s<seed>_points.pt  base points on LSPET-train (SCAI-Lite)
    e<N>/lite/            SCAI-Lite (:mod:`.lite`): lite_<start>.pth, lite.json (training,
        val choices), rows/<split>/ (its rows, val tuning included)
    report.json           everything the report prints
"""
import json
import os
import os.path as osp
import pickle
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .analysis import score_keypoints, selection_analysis, signal_report
from .base import (ensure_base, epoch_checkpoints, pick_checkpoint, val_curve)
from .cache import build_loader, build_model, cache_split, decode, load_cache
from .coco_eval import coco_evaluate, write_limb_only_ann
from .lite import lite_config, lite_variants, run_lite
from .methods import Variant, chain_distal_index, plain_correction, run_variant
from .metrics import bootstrap_ap_diff
from .train import scai_train_config, train_scai

BASE_CONFIG = osp.join('configs', 'body_2d_keypoint', 'topdown_heatmap', 'lspet',
                       'td-hm_res18_1xb32-6e_lspet-128x96.py')
SCAI_CONFIG = osp.join('configs', 'body_2d_keypoint', 'scai', 'lspet',
                       'td-hm_res18_scai-1xb32-6e_lspet-128x96.py')
SPLITS = ('val', 'test', 'coco')


@dataclass
class Settings:
    """What the benchmark runs. Defaults: the full run of ``tools/benchmark.py``."""
    work_dir: str = osp.join('work_dirs', 'benchmark')
    base_config: str = BASE_CONFIG
    scai_config: str = SCAI_CONFIG
    base_epochs: Optional[int] = None
    #: a base checkpoint to use as is (skips step 1's training and curve)
    base_checkpoint: Optional[str] = None
    #: base epoch to use instead of the validation pick (e.g. an early checkpoint)
    base_epoch: Optional[int] = None
    #: images per split (None: all); the quick run uses a few
    limit: Optional[int] = None
    #: SCAI stage lengths (epochs) and training images (None: all 8,500)
    stages: dict = field(default_factory=lambda: dict(
        pretrain_epochs=3, correct_epochs=2, multi_epochs=1, max_rounds=3))
    train_images: Optional[int] = None
    ablation: bool = True
    curve_test: bool = False
    bootstrap: int = 1000
    batch_size: int = 32
    num_workers: int = 2
    seed: int = 0
    base_cfg_options: dict = field(default_factory=dict)
    scai_cfg_options: dict = field(default_factory=dict)
    docs_dir: Optional[str] = None
    #: file stem of the docs copies (``<docs_name>.json``, ``<docs_name>_tables.md``)
    docs_name: str = 'benchmarks'
    quick: bool = False
    #: SCAI-Lite: ``LiteSettings`` overrides ({}: the defaults); None: no Lite step
    lite: Optional[dict] = field(default_factory=dict)
    #: train SCAI on the base's features cached once per training image
    #: (:mod:`.feature_cache`) instead of running the base every epoch
    feature_cache: bool = False
    #: also the switch and ablation rows (False: the headline rows only)
    switch_rows: bool = True
    #: the 4-rotation rows (heatmap-peak choice; E_s choice) on the test splits
    rotation: bool = False


class Pipeline:
    """Runs the steps of :class:`Settings`; ``echo`` prints the progress."""

    def __init__(self, settings: Settings, echo: Callable[[str], None] = None) -> None:
        self.s = settings
        self.echo = echo or (lambda msg: print(msg, flush=True))
        self.wd = osp.abspath(settings.work_dir)
        os.makedirs(self.wd, exist_ok=True)
        self.report: Dict = dict(settings=asdict(settings), steps={})
        self._cfgs: Dict[str, object] = {}
        self._models: Dict[str, object] = {}
        #: config key (``cfg``) of each model name; default ``'scai'``
        self.model_configs: Dict[str, str] = {}
        #: row-cache folders by ``Variant.extra['rows']``; default ``sdir('rows')``
        self.row_roots: Dict[str, str] = {}
        self._row_dirs: Dict[tuple, str] = {}
        self.lite: Optional[dict] = None
        self.t_start = time.perf_counter()

    # ------------------------------------------------------------- helpers
    def log(self, msg: str) -> None:
        self.echo(f'[{time.strftime("%H:%M:%S")} +{time.perf_counter() - self.t_start:6.0f}s]'
                  f' {msg}')

    def _timed(self, name: str):
        pipeline = self

        class _T:
            def __enter__(self):
                self.t0 = time.perf_counter()
                pipeline.log(f'== {name}')

            def __exit__(self, *exc):
                sec = time.perf_counter() - self.t0
                pipeline.report['steps'].setdefault(name, {})['seconds'] = round(sec, 1)
                if exc[0] is None:
                    pipeline.log(f'== {name}: done in {sec:.0f} s')
        return _T()

    def cfg(self, which: str):
        """The ``'base'``, ``'scai'`` or ``'lite'`` config (with the settings'
        overrides; the lite config takes the SCAI ones)."""
        if which == 'lite' and which not in self._cfgs:
            self._cfgs[which] = lite_config(self)
        if which not in self._cfgs:
            from mmengine.config import Config
            path = self.s.base_config if which == 'base' else self.s.scai_config
            cfg = Config.fromfile(path)
            opts = self.s.base_cfg_options if which == 'base' else self.s.scai_cfg_options
            if opts:
                cfg.merge_from_dict(opts)
            self._cfgs[which] = cfg
        return self._cfgs[which]

    def split_dataset(self, split: str) -> dict:
        """Dataset config of a split (test mode, val pipeline)."""
        cfg = self.cfg('base')
        if split == 'val':
            ds = dict(cfg.val_dataloader.dataset)
        elif split == 'test':
            ds = dict(cfg.test_dataloader.dataset)
        elif split == 'coco':
            root = osp.join(osp.dirname(osp.normpath(cfg.test_dataloader.dataset.data_root)),
                            'coco_sample')
            ds = dict(type='CocoDataset', data_mode='topdown', data_root=root + '/',
                      ann_file='annotations/person_keypoints.json',
                      data_prefix=dict(img='images/'),
                      pipeline=cfg.test_dataloader.dataset.pipeline)
        else:
            raise ValueError(split)
        ds.update(test_mode=True, bbox_file=None)
        if self.s.limit:
            ds['indices'] = self.s.limit
        return ds

    def ann_file(self, split: str, img_ids) -> str:
        """The split's ground truth restricted to ``img_ids`` (COCO: limb joints only)."""
        ds = self.split_dataset(split)
        src = osp.join(ds['data_root'], ds['ann_file'])
        os.makedirs(osp.join(self.wd, 'ann'), exist_ok=True)
        ids = sorted(set(int(i) for i in img_ids))
        tag = f'{split}_{len(ids)}'
        dst = osp.join(self.wd, 'ann', f'{tag}.json')
        if not osp.exists(dst):
            with open(src) as f:
                data = json.load(f)
            keep = set(ids)
            data['images'] = [im for im in data['images'] if im['id'] in keep]
            data['annotations'] = [a for a in data['annotations'] if a['image_id'] in keep]
            with open(dst + '.tmp', 'w') as f:
                json.dump(data, f)
            os.replace(dst + '.tmp', dst)
        if split == 'coco':
            dst = write_limb_only_ann(dst, osp.join(self.wd, 'ann', f'{tag}_limbs.json'))
        return dst

    # ---------------------------------------------------------- step 1: base
    def step_base(self) -> dict:
        with self._timed('1 base'):
            if self.s.base_checkpoint:
                info = dict(status='given', checkpoint=self.s.base_checkpoint, epoch=None,
                            curve={}, logged_curve={})
                self.report['base'] = info
                return info
            base_wd = osp.join(self.wd, 'base')
            max_epochs = self.s.base_epochs or self.cfg('base').train_cfg['max_epochs']
            state = None
            if self.s.quick:
                main_base = osp.join(osp.dirname(self.wd), 'benchmark', 'base')
                if not _all_ckpts(base_wd) and _all_ckpts(main_base):
                    base_wd = main_base  # reuse the real base, read-only
                    self.log(f'quick: reusing the base checkpoints in {base_wd}')
                if _all_ckpts(base_wd):
                    state = dict(status='reused (quick)')
            if state is None:
                state = ensure_base(self.cfg('base'), base_wd, max_epochs, echo=self.log)
            ckpts = _all_ckpts(base_wd)
            if not ckpts:
                raise RuntimeError(f'no base checkpoint in {base_wd}')
            curve = self.base_curve(base_wd, ckpts)
            epoch = self.s.base_epoch or pick_checkpoint(
                {e: {'coco/AP': v['val']['AP']} for e, v in curve.items()}, ckpts)
            info = dict(status=state['status'], epochs_done=max(ckpts),
                        epochs_planned=max_epochs, work_dir=base_wd,
                        epoch=epoch, checkpoint=ckpts[epoch],
                        picked_by='given' if self.s.base_epoch else 'val AP',
                        curve=curve, logged_curve=val_curve(base_wd))
            self.report['base'] = info
            self.log(f'base: epoch {epoch} of {max(ckpts)} done '
                     f'(val AP {curve[epoch]["val"]["AP"]:.4f}), {state["status"]}')
        return info

    def base_curve(self, base_wd: str, ckpts: Dict[int, str]) -> Dict[int, dict]:
        """Validation AP (and optionally test AP) of every base epoch, computed on the
        500-image split with its own annotation subset; cached per epoch."""
        path = osp.join(self.wd, 'base_curve.json' if not self.s.limit else
                        f'base_curve_{self.s.limit}.json')
        curve = {}
        if osp.exists(path):
            with open(path) as f:
                curve = {int(k): v for k, v in json.load(f).items()}
        splits = ['val'] + (['test'] if self.s.curve_test else [])
        for epoch, ckpt in ckpts.items():
            row = curve.setdefault(epoch, {})
            for split in splits:
                if split in row:
                    continue
                model = build_model(self.cfg('base'), ckpt)
                loader = build_loader(self.cfg('base'), self.split_dataset(split),
                                      self.s.batch_size, self.s.num_workers)
                c = cache_split(model, loader, None, flip=False, feats=False)
                kpts, scores = decode(model.head, c['heatmaps'], c['meta'])
                ann = self.ann_file(split, c['meta']['img_id'])
                m, _, _ = coco_evaluate(ann, c['dataset_meta'], c['meta'], kpts, scores,
                                        osp.join(self.wd, 'tmp', f'curve_{split}'))
                row[split] = dict(AP=m['AP'], AP50=m['AP .5'], AR=m['AR'],
                                  **score_keypoints(kpts, c['meta']))
                self.log(f'base epoch {epoch}: {split} AP {m["AP"]:.4f}, PCK@0.2 '
                         f'{row[split]["pck"]:.3f}')
                with open(path, 'w') as f:
                    json.dump(curve, f, indent=1)
        return {e: curve[e] for e in ckpts}

    # -------------------------------------------------------- step 2: caches
    def ekey(self) -> str:
        b = self.report['base']
        if b.get('epoch') is None:
            return 'given'
        return f'e{b["epoch"]}' + (f'_n{self.s.limit}' if self.s.limit else '')

    def edir(self, *parts) -> str:
        return osp.join(self.wd, self.ekey(), *parts)

    def sdir(self, *parts) -> str:
        """Folder of one SCAI training setting (training images and stage lengths),
        so that runs with other settings never reuse each other's models or rows."""
        st = self.s.stages
        tag = (f'scai_n{self.s.train_images or "all"}_s{st["pretrain_epochs"]}-'
               f'{st["correct_epochs"]}-{st["multi_epochs"]}')
        return self.edir(tag, *parts)

    def step_cache(self) -> Dict[str, dict]:
        caches = {}
        with self._timed('2 cache base outputs'):
            model = None
            for split in SPLITS:
                path = self.edir('cache', f'{split}.pt')
                if not osp.exists(path):
                    if model is None:
                        model = build_model(self.cfg('base'), self.report['base']['checkpoint'])
                    loader = build_loader(self.cfg('base'), self.split_dataset(split),
                                          self.s.batch_size, self.s.num_workers)
                    last = [0.]

                    def progress(done, total, split=split, last=last):
                        if time.perf_counter() - last[0] > 20 or done == total:
                            last[0] = time.perf_counter()
                            self.log(f'cache {split}: {done}/{total}')
                    cache_split(model, loader, path, flip=True,
                                test_cfg=self.cfg('base').model.test_cfg,
                                progress=progress)
                caches[split] = load_cache(path)
                self.log(f'cache {split}: {len(caches[split]["heatmaps"])} instances '
                         f'({caches[split]["seconds"]:.0f} s to make)')
        self.caches = caches
        return caches

    # ------------------------------------------------------ step 3: training
    def step_train(self) -> Dict[str, str]:
        ckpts = {}
        st = dict(self.s.stages)
        with self._timed('3 train SCAI'):
            cfg = scai_train_config(
                self.s.scai_config, self.sdir('scai', 'main'),
                self.report['base']['checkpoint'], st, self.s.train_images,
                self.s.num_workers, self.s.scai_cfg_options, seed=self.s.seed,
                name='scai_main')
            self._maybe_feature_cache(cfg)
            res = train_scai(cfg, self.log)
            ckpts['scai'] = res['checkpoint']
            ckpts['stage1'] = res['stage1']
            self.report['steps'].setdefault('3 train SCAI', {})['main'] = res
            if self.s.ablation:
                # the paper's "correction alone": stage 2 with Γ frozen at its stage-1
                # weights (lr 0), branched from the main run's stage-1 checkpoint
                ab = dict(st, pretrain_epochs=0)
                opts = dict(self.s.scai_cfg_options)
                opts['optim_wrapper.gamma.optimizer.lr'] = 0.0
                cfg_ab = scai_train_config(
                    self.s.scai_config, self.sdir('scai', 'gamma_frozen'),
                    ckpts['stage1'], ab, self.s.train_images, self.s.num_workers, opts,
                    seed=self.s.seed, name='scai_gamma_frozen')
                self._maybe_feature_cache(cfg_ab)
                res_ab = train_scai(cfg_ab, self.log)
                ckpts['gamma_frozen'] = res_ab['checkpoint']
                self.report['steps']['3 train SCAI']['gamma_frozen'] = res_ab
        self.report['scai_checkpoints'] = ckpts
        return ckpts

    def _maybe_feature_cache(self, cfg) -> None:
        """With ``Settings.feature_cache``: cache the base's features of the training
        images once (per image subset) and train on them."""
        if not self.s.feature_cache:
            return
        from .feature_cache import cache_train_features, use_feature_cache
        path = self.edir('cache', f'train{self.s.train_images or "all"}_s{self.s.seed}'
                         '_feats.pt')
        last = [0.]

        def progress(done, total):
            if time.perf_counter() - last[0] > 30 or done == total:
                last[0] = time.perf_counter()
                self.log(f'cache train features: {done}/{total}')
        info = cache_train_features(cfg, self.report['base']['checkpoint'], path,
                                    self.s.batch_size, self.s.num_workers, progress)
        self.report['steps'].setdefault('3 train SCAI', {})['feature_cache'] = info
        use_feature_cache(cfg, path)

    def head(self, name: str):
        """The SCAIHead of a trained SCAI checkpoint (eval mode)."""
        if name not in self._models:
            model = build_model(self.cfg(self.model_configs.get(name, 'scai')),
                                self.report['scai_checkpoints'][name])
            self._models[name] = model.head.eval()
        return self._models[name]

    # --------------------------------------------------------- rows & tuning
    def evaluate(self, split: str, variant: Variant, force: bool = False) -> dict:
        """Run one row on one split (cached in ``<setting>/rows/<split>/``, or under
        ``row_roots[variant.extra['rows']]``)."""
        slug = _slug(variant.name)
        rdir = self.rows_dir(split, variant)
        os.makedirs(rdir, exist_ok=True)
        self._row_dirs[(split, variant.name)] = rdir
        jpath = osp.join(rdir, slug + '.json')
        if osp.exists(jpath) and not force:
            with open(jpath) as f:
                row = json.load(f)
            if row.get('variant') == _jsonable(variant.to_dict()):
                return row
        cache = self.caches[split]
        head = self.head(variant.model) if variant.refine else None
        if variant.extra.get('plain'):
            res = self._plain(head, cache, variant)
        else:
            res = run_variant(head, cache, variant, self.s.batch_size)
        dec_head = head if head is not None else self._base_head()
        kpts, scores = decode(dec_head, res['heatmaps'], cache['meta'])
        ann = self.ann_file(split, cache['meta']['img_id'])
        metrics, table, img_ids = coco_evaluate(ann, cache['dataset_meta'], cache['meta'],
                                                kpts, scores, osp.join(rdir, slug))
        check = table.ap()['AP']
        if abs(check - metrics['AP']) > 1e-9:
            self.log(f'WARNING: re-accumulated AP {check:.6f} != CocoMetric '
                     f'{metrics["AP"]:.6f} ({split}/{variant.name})')
        row = dict(variant=_jsonable(variant.to_dict()), split=split,
                   n=int(len(kpts)), AP=metrics['AP'], AP50=metrics['AP .5'],
                   AP75=metrics['AP .75'], AR=metrics['AR'],
                   seconds=round(res['seconds'], 2), **score_keypoints(kpts, cache['meta']))
        if res.get('E_s') is not None:
            valid = res['valid']
            row['corrected_frac'] = float((~res['use_base'] & valid).sum()
                                          / max(valid.sum(), 1))
            row['E_s'] = float(np.nanmean(res['E_s'])) if valid.any() else float('nan')
            row['E_base'] = float(np.nanmean(np.where(valid, res['E_base'], np.nan))) \
                if valid.any() else float('nan')
            if res.get('tta_accepted') is not None:
                row['tta_accepted_frac'] = float((res['tta_accepted'] & valid).sum()
                                                 / max(valid.sum(), 1))
            if res['tta_history']:
                h = res['tta_history']
                row['tta'] = {k: float(np.mean([r[k] for r in h])) for k in h[0]}
        np.savez_compressed(osp.join(rdir, slug + '.npz'), keypoints=kpts, scores=scores,
                            **{k: res[k] for k in ('E_s', 'E_base', 'use_base', 'valid')
                               if res.get(k) is not None})
        with open(osp.join(rdir, slug + '.pkl'), 'wb') as f:
            pickle.dump(dict(table=table, img_ids=img_ids), f)
        with open(jpath, 'w') as f:
            json.dump(_jsonable(row), f, indent=1)
        return row

    def _plain(self, head, cache: dict, variant: Variant) -> dict:
        """The "always correct" row: no E_s acceptance, no base candidate."""
        saved = head.refiner.start_mode
        if variant.start is not None:
            head.refiner.start_mode = variant.start
        t0 = time.perf_counter()
        try:
            p = plain_correction(head, cache, flip=variant.flip, rounds=variant.rounds)
        finally:
            head.refiner.start_mode = saved
        return dict(heatmaps=p['heatmaps'], E_s=p['E_s'], E_base=p['E_base'],
                    valid=p['valid'], use_base=~p['valid'], tta_accepted=None,
                    tta_history=[], seconds=time.perf_counter() - t0)

    def _base_head(self):
        if 'base_head' not in self._models:
            model = build_model(self.cfg('base'))  # the codec only; weights not needed
            self._models['base_head'] = model.head
        return self._models['base_head']

    def rows_dir(self, split: str, variant: Variant) -> str:
        """The folder that caches ``variant``'s row on ``split``."""
        key = variant.extra.get('rows')
        if key is None:
            return self.sdir('rows', split)
        return osp.join(self.row_roots[key], split)

    def _row_path(self, split: str, name: str, ext: str) -> str:
        slug = _slug(name)
        rdir = self._row_dirs.get((split, name)) or self.sdir('rows', split)
        return osp.join(rdir, slug + ext)

    def load_table(self, split: str, name: str):
        with open(self._row_path(split, name, '.pkl'), 'rb') as f:
            return pickle.load(f)['table']

    def load_arrays(self, split: str, name: str) -> dict:
        return dict(np.load(self._row_path(split, name, '.npz')))

    def step_tune(self) -> dict:
        """Minimal tuning on the validation split (never on test)."""
        path = self.sdir('tuning.json')
        if osp.exists(path):
            with open(path) as f:
                self.tuning = json.load(f)
            self.log(f'tuning (cached): {self.tuning["chosen"]}')
            return self.tuning
        with self._timed('4 tune on val'):
            grid = []
            base = self.evaluate('val', Variant('base', model='base', refine=False,
                                                note='base heatmaps, decoded'))
            for start in ('phi', 'base'):
                for rounds in (1, 3):
                    v = Variant(f'tune start={start} rounds={rounds}', start=start,
                                rounds=rounds)
                    r = self.evaluate('val', v)
                    grid.append(dict(start=start, rounds=rounds, AP=r['AP'],
                                     pck=r['pck'], distal_err=r['distal_err']))
                    self.log(f'val {v.name}: AP {r["AP"]:.4f} (base {base["AP"]:.4f})')
            best = max(grid, key=lambda g: (g['AP'], -g['rounds']))
            tta_grid, tbest = self.tune_tta('tune tta', start=best['start'],
                                            rounds=best['rounds'])
            self.tuning = dict(
                base_val_AP=base['AP'], grid=grid, tta_grid=tta_grid,
                chosen=dict(start=best['start'], rounds=best['rounds'],
                            tta=dict(preset='default',
                                     select_quantile=tbest['select_quantile'],
                                     safeguard=tbest['safeguard'])))
            with open(path, 'w') as f:
                json.dump(self.tuning, f, indent=1)
            self.log(f'tuning: {self.tuning["chosen"]}')
        return self.tuning

    def tune_tta(self, prefix: str, **variant) -> Tuple[List[dict], dict]:
        """The validation grid of the default TTA preset (selection x safeguard) for
        one refinement setting (``variant``: :class:`Variant` fields). Returns the grid
        and its best entry (ties: the selective setting)."""
        grid = []
        for q in (0.5, None):
            for safeguard in ('instance', 'batch'):
                tta = dict(preset='default', select_quantile=q, safeguard=safeguard)
                v = Variant(f'{prefix} q={q} safeguard={safeguard}', tta=tta, **variant)
                r = self.evaluate('val', v)
                grid.append(dict(select_quantile=q, safeguard=safeguard, AP=r['AP'],
                                 pck=r['pck'], distal_err=r['distal_err']))
                self.log(f'val {v.name}: AP {r["AP"]:.4f}')
        return grid, max(grid, key=lambda g: (g['AP'], g['select_quantile'] or 0))

    def variants(self) -> List[Variant]:
        ch = self.tuning['chosen']
        sr = dict(start=ch['start'], rounds=ch['rounds'])
        tta = ch['tta']
        rows = [
            Variant('base', model='base', refine=False, note='base heatmaps, decoded'),
            Variant('base+flip', model='base', refine=False, flip=True,
                    note='MMPose flip test'),
            Variant('+SCAI', **sr, note='refinement, no TTA'),
            Variant('+SCAI+flip', flip=True, **sr, note='refinement of the flip average'),
            Variant('+SCAI+TTA', tta=tta, **sr, note='default TTA preset (tuned)'),
            Variant('+SCAI+TTA+flip', flip=True, tta=tta, **sr),
            Variant('+SCAI+TTA paper preset', tta=dict(preset='paper'), **sr,
                    note='20 steps, lr 0.013 x0.96, 20 rounds, per-batch accept'),
            Variant('switch: always correct (no E_s rule)', **sr,
                    extra=dict(plain=True),
                    note='every round kept, base never a candidate; no TTA'),
            Variant('switch: safeguard=none', tta=dict(tta, safeguard='none'), **sr),
            Variant('switch: safeguard=batch', tta=dict(tta, safeguard='batch'), **sr),
            Variant('switch: safeguard=instance', tta=dict(tta, safeguard='instance'),
                    **sr),
            Variant('switch: selective q=0.5', tta=dict(tta, select_quantile=0.5), **sr),
            Variant('switch: all chains', tta=dict(tta, select_quantile=None), **sr),
            # one adaptation per person (a person's result does not depend on its batch)
            Variant('switch: per-instance TTA', tta=dict(tta, unit='instance'), **sr),
            Variant('switch: continual', tta=dict(tta, mode='continual'), **sr),
            Variant('ablation: Phi only (stage 1, no C)', model='stage1', rounds=0,
                    start='phi', note='Φ prediction + E_s base-candidate rule'),
        ]
        if self.s.ablation:
            rows.append(Variant('ablation: C, Gamma frozen', model='gamma_frozen', **sr,
                                note="paper's 'correction network alone'"))
        rows += [
            Variant('ablation: + joint Gamma training', **sr, note='= +SCAI'),
            Variant('ablation: + TTA', tta=tta, **sr, note='= +SCAI+TTA'),
        ]
        if not self.s.switch_rows:
            rows = [v for v in rows if not v.name.startswith(('switch:', 'ablation:'))]
        if self.lite is not None:
            rows += lite_variants(self.lite['chosen'])
        return rows

    # ------------------------------------------------------ step 3b: SCAI-Lite
    def step_lite(self) -> dict:
        """Train SCAI-Lite on the cached base outputs, tune it on val, time it
        (:func:`.lite.run_lite`); its rows then join :meth:`variants`."""
        with self._timed('3b SCAI-Lite'):
            self.lite = run_lite(self)
        self.report['lite'] = self.lite
        return self.lite

    def step_rows(self) -> Dict[str, List[dict]]:
        out = {}
        with self._timed('5 evaluate rows (test, coco)'):
            for split in ('test', 'coco'):
                rows = []
                for v in self.variants():
                    if split not in v.extra.get('splits', [split]):
                        continue
                    t0 = time.perf_counter()
                    r = self.evaluate(split, v)
                    rows.append(r)
                    self.log(f'{split:5s} {v.name:38s} AP {r["AP"]:.4f} AP50 {r["AP50"]:.4f}'
                             f' PCK {r["pck"]:.3f} distal {r["distal_err"]:.3f}'
                             f' ({time.perf_counter() - t0:.1f} s)')
                out[split] = rows
        self.rows = out
        return out

    # ------------------------------------------------------ step 5b: rotations
    def step_rotation(self) -> Dict[str, List[dict]]:
        """The 4-rotation rows on the test splits: the base run on the crop turned by
        0/90/180/270 degrees (each turn cached once, plain pass), and per person the
        turn chosen by the mean limb heatmap peak (as ``RotationTTAPoseEstimator``) or
        by SCAI's E_s (lowest mean over the person's valid chains: Γ's E_s on the base
        heatmaps for the base rows, the final E_s for the +SCAI rows). The heatmaps
        are turned back before decoding (a heatmap cell maps onto a cell exactly).
        No choice is tuned, so the validation split is not used."""
        import torch

        out = {}
        ch = self.tuning['chosen']
        head = self.head('scai')
        limbs = list(range(5, 17))
        with self._timed('5b rotation rows (test, coco)'):
            model = None
            for split in ('test', 'coco'):
                per_k = []
                for k in range(4):
                    cache = self.caches[split]
                    if k:
                        path = self.edir('cache', f'{split}_rot{k}.pt')
                        if not osp.exists(path):
                            if model is None:
                                model = build_model(self.cfg('base'),
                                                    self.report['base']['checkpoint'])
                            loader = build_loader(self.cfg('base'),
                                                  self.split_dataset(split),
                                                  self.s.batch_size, self.s.num_workers)
                            cache_split(model, loader, path, flip=False, rotate=k)
                        cache = dict(load_cache(path), meta=cache['meta'],
                                     heatmaps_flip=None)
                    res = run_variant(head, cache, Variant(
                        '+SCAI', start=ch['start'], rounds=ch['rounds']),
                        self.s.batch_size)
                    back = dict(
                        base=torch.rot90(cache['heatmaps'], -k, dims=(-2, -1)),
                        scai=torch.rot90(res['heatmaps'], -k, dims=(-2, -1)))
                    dec = {m: decode(head, hm, cache['meta']) for m, hm in back.items()}
                    with np.errstate(all='ignore'):
                        es = {m: np.nanmean(np.where(res['valid'], res[e], np.nan), 1)
                              for m, e in (('base', 'E_base'), ('scai', 'E_s'))}
                    per_k.append(dict(dec=dec, es=es,
                                      peak=dec['base'][1][:, limbs].mean(1)))
                    self.log(f'rotation {split} k={k}: mean limb peak '
                             f'{per_k[-1]["peak"].mean():.3f}')
                peak = np.stack([p['peak'] for p in per_k], 1)
                k_peak = peak.argmax(1)
                rows = []
                for m in ('base', 'scai'):
                    es = np.stack([p['es'][m] for p in per_k], 1)
                    es = np.where(np.isfinite(es), es, np.inf)
                    k_es = np.where(np.isfinite(es).any(1), es.argmin(1), k_peak)
                    label = 'base' if m == 'base' else '+SCAI'
                    for rule, ks in (('peak', k_peak), ('E_s', k_es)):
                        name = f'{label} rot4 ({rule})'
                        kpts = np.stack([per_k[k]['dec'][m][0][i]
                                         for i, k in enumerate(ks)])
                        scores = np.stack([per_k[k]['dec'][m][1][i]
                                           for i, k in enumerate(ks)])
                        share = np.bincount(ks, minlength=4) / len(ks)
                        r = self._score_row(split, name, kpts, scores, dict(
                            name=name, rule=rule, model=m,
                            rounds=ch['rounds'], start=ch['start']),
                            rotation_share=share.tolist())
                        rows.append(r)
                        self.log(f'{split:5s} {name:38s} AP {r["AP"]:.4f} PCK '
                                 f'{r["pck"]:.3f} distal {r["distal_err"]:.3f} (turns '
                                 f'{"/".join(f"{x:.2f}" for x in share)})')
                self.rows[split] += rows
                out[split] = rows
        self.report['rotation'] = dict(
            rules=dict(peak='mean heatmap peak of the 12 limb joints, highest wins',
                       E_s='mean E_s over the valid chains, lowest wins'))
        return out

    def _score_row(self, split: str, name: str, kpts: np.ndarray, scores: np.ndarray,
                   variant: dict, **extra) -> dict:
        """Evaluate given keypoints as row ``name`` (saved like :meth:`evaluate`)."""
        cache = self.caches[split]
        rdir = self.sdir('rows', split)
        os.makedirs(rdir, exist_ok=True)
        slug = _slug(name)
        self._row_dirs[(split, name)] = rdir
        ann = self.ann_file(split, cache['meta']['img_id'])
        metrics, table, img_ids = coco_evaluate(ann, cache['dataset_meta'], cache['meta'],
                                                kpts, scores, osp.join(rdir, slug))
        row = dict(variant=_jsonable(variant), split=split, n=int(len(kpts)),
                   AP=metrics['AP'], AP50=metrics['AP .5'], AP75=metrics['AP .75'],
                   AR=metrics['AR'], seconds=0.0, **extra,
                   **score_keypoints(kpts, cache['meta']))
        np.savez_compressed(osp.join(rdir, slug + '.npz'), keypoints=kpts, scores=scores)
        with open(osp.join(rdir, slug + '.pkl'), 'wb') as f:
            pickle.dump(dict(table=table, img_ids=img_ids), f)
        with open(osp.join(rdir, slug + '.json'), 'w') as f:
            json.dump(_jsonable(row), f, indent=1)
        return row

    # ------------------------------------------------------ step 6: analyses
    def step_analysis(self) -> dict:
        res = {}
        with self._timed('6 E_s analyses and bootstrap'):
            ch = self.tuning['chosen']
            head = self.head('scai')
            didx = chain_distal_index(head)
            for split in ('val', 'test', 'coco'):
                cache = self.caches[split]
                rows = {v.name: v for v in self.variants()}
                base = self.evaluate(split, rows['base'])
                scai = self.evaluate(split, rows['+SCAI'])
                a_base = self.load_arrays(split, 'base')
                a_scai = self.load_arrays(split, '+SCAI')
                names = list(head.chains.names)
                sig = dict(
                    base=signal_report(a_scai['E_base'], a_base['keypoints'],
                                       a_base['scores'], cache['meta'], didx,
                                       self.s.batch_size, self.s.seed, names),
                    scai=signal_report(a_scai['E_s'], a_scai['keypoints'],
                                       a_scai['scores'], cache['meta'], didx,
                                       self.s.batch_size, self.s.seed, names))
                saved = head.refiner.start_mode
                head.refiner.start_mode = ch['start']
                try:
                    plain = plain_correction(head, cache, rounds=ch['rounds'])
                finally:
                    head.refiner.start_mode = saved
                # E_s relative to the anchor heatmap's own norm (E_s scales with it)
                with np.errstate(all='ignore'):
                    rel = plain['E_base'] / plain['anchor_norm']
                sig['base_rel'] = signal_report(rel, a_base['keypoints'], a_base['scores'],
                                                cache['meta'], didx, self.s.batch_size,
                                                self.s.seed)
                sig['anchor_norm'] = signal_report(
                    plain['anchor_norm'], a_base['keypoints'], a_base['scores'],
                    cache['meta'], didx, self.s.batch_size, self.s.seed)
                kp_plain, _ = decode(head, plain['heatmaps'], cache['meta'])
                sel = selection_analysis(a_base['keypoints'], kp_plain, plain['E_base'],
                                         plain['E_s'], cache['meta'], didx)
                res[split] = dict(signal=sig, selection=sel, base_AP=base['AP'],
                                  scai_AP=scai['AP'])
                self.log(f'{split}: E_s vs distal error per batch r={sig["base"]["batch_r_err"]:+.3f}'
                         f' (base chains), Spearman per chain E_s '
                         f'{sig["base"]["chain_spearman_es"]:+.3f} vs 1-score '
                         f'{sig["base"]["chain_spearman_conf"]:+.3f}; rule acc '
                         f'{sel["rule_acc"]:.3f}, distal PCK never/always/rule/oracle '
                         f'{sel["never_pck"]:.3f}/{sel["always_pck"]:.3f}/'
                         f'{sel["rule_pck"]:.3f}/{sel["oracle_pck"]:.3f}')
            boot = {}
            for split in ('test', 'coco'):
                ref = self.load_table(split, 'base+flip')
                boot[split] = {}
                for r in self.rows[split]:
                    name = r['variant']['name']
                    if name == 'base+flip':
                        continue
                    b = bootstrap_ap_diff(self.load_table(split, name), ref,
                                          n=self.s.bootstrap, seed=self.s.seed)
                    boot[split][name] = b
                    r['dAP_vs_base_flip'] = b
                self.log(f'bootstrap {split}: {len(boot[split])} differences, '
                         f'{self.s.bootstrap} resamples')
            res['bootstrap'] = boot
        self.analysis = res
        return res

    # ---------------------------------------------------------- step 7: report
    def step_report(self) -> dict:
        from .report import render_markdown
        rep = self.report
        rep.update(tuning=self.tuning, rows=self.rows, analysis=self.analysis,
                   lite=self.lite,
                   caches={k: dict(n=len(v['heatmaps']), seconds=round(v['seconds'], 1))
                           for k, v in self.caches.items()},
                   finished=time.strftime('%Y-%m-%d %H:%M:%S %Z'),
                   wall_seconds=round(time.perf_counter() - self.t_start, 1),
                   machine=machine_info(), command=' '.join(sys.argv))
        rep = portable_paths(_jsonable(rep), self.wd)
        with open(osp.join(self.wd, 'report.json'), 'w') as f:
            json.dump(rep, f, indent=1)
        md = render_markdown(rep)
        with open(osp.join(self.wd, 'report.md'), 'w') as f:
            f.write(md)
        # a copy per base epoch and SCAI setting, which later runs do not overwrite
        with open(self.sdir('report.json'), 'w') as f:
            json.dump(rep, f, indent=1)
        with open(self.sdir('report.md'), 'w') as f:
            f.write(md)
        self.echo(md)
        if self.s.docs_dir:
            os.makedirs(self.s.docs_dir, exist_ok=True)
            with open(osp.join(self.s.docs_dir, f'{self.s.docs_name}.json'), 'w') as f:
                json.dump(rep, f, indent=1)
            with open(osp.join(self.s.docs_dir, f'{self.s.docs_name}_tables.md'),
                      'w') as f:
                f.write(md)
        return rep

    def run(self) -> dict:
        self.step_base()
        self.step_cache()
        self.step_train()
        if self.s.lite is not None:
            self.step_lite()
        self.step_tune()
        self.step_rows()
        if self.s.rotation:
            self.step_rotation()
        self.step_analysis()
        return self.step_report()


# ------------------------------------------------------------------- utils
def _all_ckpts(base_wd: str) -> Dict[int, str]:
    """Per-epoch base checkpoints: ``epoch_N.pth`` of the work dir, completed by the
    snapshots of ``best_coco_AP_epoch_N.pth`` in ``<work dir>_snapshots`` (taken while
    a run whose config saved no per-epoch checkpoints was going on)."""
    ckpts = {**epoch_checkpoints(base_wd + '_snapshots'), **epoch_checkpoints(base_wd)}
    return dict(sorted(ckpts.items()))


def _slug(name: str) -> str:
    """A row's file name stem: its name with every run of other characters as ``_``."""
    return re.sub(r'[^A-Za-z0-9_.+-]+', '_', name)


def _cli(v) -> str:
    return json.dumps(v).replace(' ', '') if not isinstance(v, str) else v


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if np.isfinite(v) else None
    if isinstance(obj, (np.integer, )):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def portable_paths(obj, work_dir: str, root: Optional[str] = None):
    """``obj`` with every absolute path inside its strings made machine-independent:
    relative to the repository root where it lies there, else ``<work_dir>/...``
    relative to the work dir, else ``<abs>/<file name>``.

    Args:
        obj: A JSON-like value (dicts, lists, strings, numbers).
        work_dir (str): The benchmark work dir.
        root (str, optional): The repository root (default :func:`repo_root`).
    """
    from .data_root import repo_root

    root = osp.realpath(root or repo_root())
    wd = osp.realpath(work_dir)
    if isinstance(obj, dict):
        return {k: portable_paths(v, wd, root) for k, v in obj.items()}
    if isinstance(obj, list):
        return [portable_paths(v, wd, root) for v in obj]
    if not isinstance(obj, str) or '/' not in obj:
        return obj

    def one(match) -> str:
        path = osp.realpath(match.group(0))
        for base, prefix in ((root, ''), (wd, '<work_dir>')):
            if path == base or path.startswith(base + os.sep):
                rel = osp.relpath(path, base)
                return (prefix or rel) if rel == '.' else osp.join(prefix, rel)
        return osp.join('<abs>', osp.basename(path))

    # an absolute path: a '/' that does not continue a word or a relative path
    return re.sub(r'(?<![\w.>-])/[^\s"\',;()]+', one, obj)


def machine_info() -> dict:
    import platform
    import torch
    info = dict(platform=platform.platform(), python=platform.python_version(),
                torch=torch.__version__, cpus=os.cpu_count(),
                torch_threads=torch.get_num_threads())
    try:
        with open('/proc/cpuinfo') as f:
            names = [ln.split(':', 1)[1].strip() for ln in f if ln.startswith('model name')]
        info['cpu'] = names[0] if names else platform.processor()
    except OSError:
        info['cpu'] = platform.processor()
    return info
