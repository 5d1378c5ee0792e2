"""Run the frozen base model once per split and cache what every method needs.

The cache of a split holds, per instance (dataset order):

- ``heatmaps`` (float32[N, K, h, w]): the base heatmaps of the plain pass;
- ``heatmaps_flip`` (float32[N, K, h, w]): the flip-test average (``flip_average``:
  ``flip_heatmaps``, with the config's ``flip_mode``/``shift_heatmap``);
- ``feats`` (float16[N, C_f, h, w]): the feature map f that feeds the base head's final
  layer (plain pass; spec §7: f from the unflipped pass);
- ``meta``: ids, image ids, category ids, bbox scores and scales (what ``CocoMetric``
  reads), ``input_center``/``input_scale``/``input_size`` (to map decoded keypoints to
  image pixels) and the ground truth ``gt_keypoints`` (float[N, K, 2]) /
  ``gt_visible`` (float[N, K]) for PCK and the distal error.

Every SCAI variant is then evaluated on these tensors: the backbone runs once per split.
"""
import os
import os.path as osp
import time
from typing import Callable, Dict, Optional

import numpy as np
import torch

from mmpose_scai.models.utils import flip_average, forward_with_features

META_ARRAYS = ('id', 'img_id', 'category_id', 'bbox_scores', 'bbox_scales',
               'input_center', 'input_scale', 'input_size', 'gt_keypoints', 'gt_visible')


def build_model(cfg, checkpoint: Optional[str] = None):
    """Build ``cfg.model`` in eval mode and load ``checkpoint`` (if any)."""
    from mmengine.runner import load_checkpoint
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    return model.eval()


def build_loader(cfg, dataset_cfg: dict, batch_size: int = 32, num_workers: int = 0):
    """A plain, unshuffled test dataloader over ``dataset_cfg``."""
    from mmengine.runner import Runner

    loader = dict(batch_size=batch_size, num_workers=num_workers,
                  persistent_workers=False, drop_last=False,
                  sampler=dict(type='DefaultSampler', shuffle=False),
                  dataset=dataset_cfg)
    return Runner.build_dataloader(loader)


@torch.no_grad()
def cache_split(model, loader, out_path: Optional[str], flip: bool = True,
                test_cfg: Optional[dict] = None, feats: bool = True,
                progress: Optional[Callable[[int, int], None]] = None,
                rotate: int = 0) -> dict:
    """Run the base over ``loader`` and save the cache to ``out_path`` (torch file).

    Args:
        model: A ``TopdownPoseEstimator`` whose head is a ``HeatmapHead`` (or an
            ``SCAIHead``, whose wrapped head is used).
        loader: Unshuffled dataloader.
        out_path (str, optional): Output file (written atomically); None: not saved.
        flip (bool): Also run the flipped pass and store the flip-test average.
        feats (bool): Keep the feature maps f (needed by SCAI, not by the base).
        test_cfg (dict): ``flip_mode`` and ``shift_heatmap`` for the flip average.
        progress (callable): Called with (done, total) after every batch.
        rotate (int): Run the base on the crops turned by this many quarter turns
            (``torch.rot90``); heatmaps and f stay in the turned frame.

    Returns:
        dict: the cache.
    """
    test_cfg = dict(test_cfg or {})
    head = getattr(model.head, 'base_head', model.head)
    hms, hms_flip, fs = [], [], []
    meta = {k: [] for k in META_ARRAYS}
    total, done, t0 = len(loader.dataset), 0, time.perf_counter()
    for data in loader:
        data = model.data_preprocessor(data, False)
        inputs, samples = data['inputs'], data['data_samples']
        if rotate % 4:
            inputs = torch.rot90(inputs, rotate, dims=(2, 3))
        hm, f = forward_with_features(head, model.extract_feat(inputs))
        hms.append(hm.float())
        if feats:
            fs.append(f.half())
        if flip:
            hm_f, _ = forward_with_features(head, model.extract_feat(inputs.flip(-1)))
            hms_flip.append(flip_average(hm, hm_f, samples[0].metainfo['flip_indices'],
                                         test_cfg, head.decoder).float())
        for s in samples:
            gi = s.gt_instances
            meta['id'].append(int(s.metainfo['id']))
            meta['img_id'].append(int(s.metainfo['img_id']))
            meta['category_id'].append(int(s.metainfo.get('category_id', 1)))
            meta['bbox_scores'].append(np.asarray(gi.bbox_scores, np.float32).reshape(-1)[0])
            meta['bbox_scales'].append(np.asarray(gi.bbox_scales, np.float32).reshape(2))
            meta['input_center'].append(np.asarray(s.metainfo['input_center'], np.float32))
            meta['input_scale'].append(np.asarray(s.metainfo['input_scale'], np.float32))
            meta['input_size'].append(np.asarray(s.metainfo['input_size'], np.float32))
            meta['gt_keypoints'].append(np.asarray(gi.keypoints, np.float32)[0])
            meta['gt_visible'].append(np.asarray(gi.keypoints_visible, np.float32)[0])
        done += len(samples)
        if progress:
            progress(done, total)
    cache = dict(
        heatmaps=torch.cat(hms), feats=torch.cat(fs) if feats else None,
        heatmaps_flip=torch.cat(hms_flip) if flip else None,
        meta={k: np.stack([np.asarray(v) for v in vals]) for k, vals in meta.items()},
        dataset_meta=_plain_meta(loader.dataset.metainfo),
        seconds=time.perf_counter() - t0, flip=flip)
    if out_path:
        os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
        tmp = out_path + '.tmp'
        torch.save(cache, tmp)
        os.replace(tmp, out_path)
    return cache


def _plain_meta(metainfo: dict) -> dict:
    """The metainfo entries CocoMetric and the scorers use."""
    keep = ('dataset_name', 'num_keypoints', 'sigmas', 'flip_indices', 'keypoint_id2name',
            'keypoint_name2id', 'CLASSES')
    return {k: metainfo[k] for k in keep if k in metainfo}


def load_cache(path: str) -> dict:
    return torch.load(path, map_location='cpu', weights_only=False)


def decode(head, heatmaps: torch.Tensor, meta: Dict[str, np.ndarray],
           batch_size: int = 256):
    """Decode heatmaps with the head's codec and map them to image pixels (as
    ``TopdownPoseEstimator.add_pred_to_datasample`` does).

    Returns:
        tuple: keypoints (ndarray[N, K, 2]) and scores (ndarray[N, K]).
    """
    head = getattr(head, 'base_head', head)
    kpts, scores = [], []
    for i in range(0, len(heatmaps), batch_size):
        for p in head.decode(heatmaps[i:i + batch_size]):
            kpts.append(np.asarray(p.keypoints, np.float64)[0])
            scores.append(np.asarray(p.keypoint_scores, np.float64)[0])
    kpts = np.stack(kpts)
    scale = meta['input_scale'][:, None].astype(np.float64)
    center = meta['input_center'][:, None].astype(np.float64)
    size = meta['input_size'][:, None].astype(np.float64)
    kpts = kpts / size * scale + center - 0.5 * scale
    return kpts, np.stack(scores)
