"""SCAI training on cached base features, for a base too slow to run every epoch.

The base is frozen, so its feature map f (what feeds the base head's final layer) is the
same in every epoch for the same crop. :func:`cache_train_features` runs the base once
over the training images (one draw of the training pipeline's augmentation per image)
and saves f (float16) with the packed data samples (targets, keypoint weights);
:func:`use_feature_cache` then points a SCAI training config at that file: the
backbone becomes :class:`CachedFeatures` (a pass-through), the data pre-processor
stops normalizing, and the dataset is :class:`CachedFeatureDataset`. The staged Runner
loop (``SCAIPoseEstimator.train_step``) is unchanged; the wrapped head's final layer
and the refinement networks see the same tensors as with the base in the loop.

The trade-off: every epoch sees the same augmented crop of an image instead of a new
draw. Checkpoints of such a run hold the head only (base head + refiner); the base
backbone comes from the base checkpoint.
"""
import os
import os.path as osp
import time
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from mmpose.registry import DATASETS, MODELS


@MODELS.register_module()
class CachedFeatures(nn.Module):
    """A backbone that returns its input: the cached feature map f."""

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        return (x, )

    def init_weights(self) -> None:
        pass


@DATASETS.register_module()
class CachedFeatureDataset(Dataset):
    """The file written by :func:`cache_train_features`: ``inputs`` is the cached f
    (float16 [C, h, w]), ``data_samples`` the packed sample of the same crop."""

    def __init__(self, path: str, **kwargs) -> None:
        data = torch.load(path, map_location='cpu', weights_only=False)
        self.feats, self.samples = data['feats'], data['data_samples']
        self.metainfo = data.get('metainfo', {})

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, idx: int) -> dict:
        return dict(inputs=self.feats[idx], data_samples=self.samples[idx])


@torch.no_grad()
def cache_train_features(cfg, checkpoint: str, out_path: str, batch_size: int = 32,
                         num_workers: int = 0,
                         progress: Optional[Callable[[int, int], None]] = None) -> dict:
    """Run the frozen base of the SCAI config ``cfg`` once over its training dataloader
    (unshuffled) and save f and the data samples to ``out_path`` (atomically).

    Returns:
        dict: ``n`` (crops) and ``seconds``.
    """
    from mmengine.runner import Runner

    from .cache import build_model

    if osp.exists(out_path):
        return torch.load(out_path, map_location='cpu', weights_only=False)['info']
    model = build_model(cfg, checkpoint)
    loader = Runner.build_dataloader(dict(
        batch_size=batch_size, num_workers=num_workers, persistent_workers=False,
        drop_last=False, sampler=dict(type='DefaultSampler', shuffle=False, seed=0),
        dataset=cfg.train_dataloader.dataset))
    feats, samples, t0 = [], [], time.perf_counter()
    total = len(loader.dataset)
    for batch in loader:
        data = model.data_preprocessor(batch, False)
        feats.append(model.extract_feat(data['inputs'])[-1].half())
        for s in data['data_samples']:
            samples.append(s.cpu())
        if progress is not None:
            progress(len(samples), total)
    info = dict(n=len(samples), seconds=round(time.perf_counter() - t0, 1))
    os.makedirs(osp.dirname(out_path) or '.', exist_ok=True)
    torch.save(dict(feats=torch.cat(feats), data_samples=samples, info=info,
                    metainfo=dict(loader.dataset.metainfo)), out_path + '.tmp')
    os.replace(out_path + '.tmp', out_path)
    return info


def use_feature_cache(cfg, path: str) -> None:
    """Point the SCAI training config ``cfg`` at the features cached in ``path``."""
    cfg.model.backbone = dict(type='CachedFeatures')
    cfg.model.data_preprocessor = dict(type='PoseDataPreprocessor')
    cfg.model.pop('neck', None)
    loader = cfg.train_dataloader
    loader.dataset = dict(type='CachedFeatureDataset', path=path)
    loader.num_workers = 0
    loader.persistent_workers = False
