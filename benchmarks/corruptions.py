"""Distribution-shift transforms for evaluation: image corruptions and synthetic occlusion.

Two MMPose transforms (registered in ``mmpose.registry.TRANSFORMS``) that go into a
top-down *test* pipeline after ``LoadImage`` and before ``TopdownAffine``, so the shift is
applied to the loaded full image in original pixel coordinates:

* :class:`ImageCorruption` -- ImageNet-C / COCO-C style corruptions at severities 1-5:
  ``gaussian_noise``, ``motion_blur``, ``defocus_blur``, ``jpeg_compression``,
  ``brightness``, ``contrast`` and ``low_resolution``. The first six are the kernels and
  severity tables of the ``imagecorruptions`` package (Apache-2.0; pinned in
  ``requirements/cpu.txt``). ``low_resolution`` is hand-written (cv2): area downsampling
  to ImageNet-C's ``pixelate`` factors 0.6, 0.5, 0.4, 0.3, 0.25 of the size and bilinear
  upsampling back, as a low-resolution camera looks; the library's ``pixelate`` (nearest
  upsampling) aliases so that severity 1 can be further from the clean image than 2.
* :class:`SyntheticOcclusion` -- seeded rectangular patches over limbs, hand-written (no
  library offers joint-targeted occlusion): each patch is centred (with a small jitter
  that keeps the joint inside it) on a randomly chosen *labelled* distal joint (wrist or
  ankle), sized relative to the person box (side ``frac * sqrt(w * h)``); severity raises
  the patch size and the number of occluded joints (:data:`OCCLUSION_LEVELS`). Keypoints
  and their visibility are left exactly as annotated: the occlusion marks nothing as
  unlabelled, so the metric still scores the occluded joints.

Both are deterministic per image: the random state is derived from ``seed`` and the
image id of the results dict (``img_id``, else the image path, else the pixels); the
occlusion also uses the instance id (``id``) so two people in one image get different
patches. The same seed is used at every severity, so severities differ only in strength.
Nothing is stored: the shifted image exists only inside the pipeline.

Benchmark entry points::

    from benchmarks.corruptions import SHIFTS, shift_pipeline
    for shift in SHIFTS:                      # corruptions + 'occlusion'
        for severity in (1, 3, 5):
            pipeline = shift_pipeline(cfg.test_dataloader.dataset.pipeline,
                                      shift, severity, seed=0)

:func:`shift_pipeline` returns a new list of transform configs with the shift inserted
right before the first ``TopdownAffine`` (the input list is not modified); ``shift=None``
returns an unchanged copy. :func:`shift_transform_cfg` gives the single transform config.
An unknown shift name or a severity outside 1-5 raises ``ValueError`` naming the value,
both here and when a transform is built.
"""
import copy
import sys
import types
import warnings
import zlib
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmpose.registry import TRANSFORMS

#: Corruption name -> ``imagecorruptions`` corruption name (``None``: hand-written here).
CORRUPTIONS: Dict[str, str] = {
    'gaussian_noise': 'gaussian_noise',
    'motion_blur': 'motion_blur',
    'defocus_blur': 'defocus_blur',
    'jpeg_compression': 'jpeg_compression',
    'brightness': 'brightness',
    'contrast': 'contrast',
    'low_resolution': None,  # hand-written, see :func:`low_resolution`
}

#: ``low_resolution``: downsampling factor per severity (ImageNet-C ``pixelate``'s).
LOW_RESOLUTION_FACTORS = (0.6, 0.5, 0.4, 0.3, 0.25)

#: Every shift name :func:`shift_pipeline` accepts, corruptions first.
SHIFTS: Tuple[str, ...] = tuple(CORRUPTIONS) + ('occlusion',)

SEVERITIES = (1, 2, 3, 4, 5)

#: Occlusion per severity: (patch side as a fraction of sqrt(box area), joints occluded).
OCCLUSION_LEVELS = ((0.15, 1), (0.20, 1), (0.25, 1), (0.30, 2), (0.35, 2))

#: Distal joints (wrists, ankles) by number of keypoints: COCO-17, CrowdPose-14, MPII-16.
DISTAL_JOINTS: Dict[int, Tuple[int, ...]] = {
    17: (9, 10, 15, 16),
    14: (4, 5, 10, 11),
    16: (0, 5, 10, 15),
}

_MIN_PATCH = 8  # px: smallest patch side


def check_severity(severity) -> int:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) \
            or int(severity) not in SEVERITIES:
        raise ValueError(f'shift severity must be an integer in 1..5, got {severity!r}')
    return int(severity)


def check_shift(shift: str) -> str:
    if shift not in SHIFTS:
        raise ValueError(f'unknown shift {shift!r}; known: {", ".join(SHIFTS)}')
    return shift


_corrupt_fn = None


def _imagecorruptions_corrupt():
    """``imagecorruptions.corrupt``, imported lazily and quietly.

    The package imports ``pkg_resources`` (only for its frost images, which are not used
    here); where setuptools no longer ships it a stand-in module is provided.
    """
    global _corrupt_fn
    if _corrupt_fn is None:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            try:
                import pkg_resources  # noqa: F401
            except ImportError:
                import importlib.resources as ir
                stub = types.ModuleType('pkg_resources')
                stub.resource_filename = lambda pkg, name: str(ir.files(pkg) / name)
                sys.modules['pkg_resources'] = stub
            try:
                from imagecorruptions import corrupt
            except ImportError as e:
                raise ImportError(
                    'ImageCorruption needs the imagecorruptions package (pinned in '
                    'requirements/cpu.txt): pip install imagecorruptions==1.1.2') from e
        _corrupt_fn = corrupt
    return _corrupt_fn


def _key(value) -> int:
    """A stable non-negative integer for an id (int, numpy int, str, ...)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0:
        return int(value)
    return zlib.crc32(str(value).encode())


def image_key(results: dict) -> int:
    """The image's seed key: ``img_id``, else the image path, else a hash of the pixels."""
    if results.get('img_id') is not None:
        return _key(results['img_id'])
    if results.get('img_path'):
        return _key(results['img_path'])
    return zlib.crc32(np.ascontiguousarray(results['img']).tobytes())


def low_resolution(img: np.ndarray, severity: int) -> np.ndarray:
    """Area-downsample by :data:`LOW_RESOLUTION_FACTORS` and bilinearly upsample back."""
    import cv2
    h, w = img.shape[:2]
    f = LOW_RESOLUTION_FACTORS[check_severity(severity) - 1]
    small = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


@contextmanager
def _global_np_seed(seed: int):
    """Seed numpy's global RNG (``imagecorruptions`` draws from it), then restore it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


class _ShiftBase(BaseTransform):

    def __init__(self, severity: int, seed: int = 0):
        self.severity = check_severity(severity)
        self.seed = int(seed)

    def _seed_sequence(self, results: dict, *extra: int) -> np.random.SeedSequence:
        return np.random.SeedSequence([self.seed, image_key(results), *extra])


@TRANSFORMS.register_module()
class ImageCorruption(_ShiftBase):
    """Corrupt ``results['img']`` (ImageNet-C / COCO-C style, mostly via ``imagecorruptions``).

    Required keys: ``img`` (uint8 HxWx3 or HxW); ``img_id`` (or ``img_path``) for the
    seed. Modified keys: ``img``. Added keys: ``shift`` (``dict(name, severity)``).

    Args:
        corruption (str): One of :data:`CORRUPTIONS`.
        severity (int): 1 (mild) ... 5 (strong).
        seed (int): Base seed; combined with the image id.
        channel_order (str): Of the loaded image, ``'bgr'`` (MMPose's ``LoadImage``) or
            ``'rgb'``; the kernels (JPEG's YCbCr in particular) expect RGB.
    """

    def __init__(self, corruption: str, severity: int, seed: int = 0,
                 channel_order: str = 'bgr'):
        if corruption not in CORRUPTIONS:
            raise ValueError(f'unknown corruption {corruption!r}; known: '
                             f'{", ".join(CORRUPTIONS)}')
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
        super().__init__(severity, seed)
        self.corruption = corruption
        self.channel_order = channel_order

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.dtype != np.uint8:
            raise TypeError(f'ImageCorruption expects a uint8 image, got {img.dtype}')
        if CORRUPTIONS[self.corruption] is None:
            results['img'] = low_resolution(img, self.severity)
            results['shift'] = dict(name=self.corruption, severity=self.severity)
            return results
        corrupt = _imagecorruptions_corrupt()
        x = img[..., ::-1] if (img.ndim == 3 and self.channel_order == 'bgr') else img
        seed = int(self._seed_sequence(results).generate_state(1, np.uint32)[0])
        with _global_np_seed(seed), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            out = corrupt(np.ascontiguousarray(x), severity=self.severity,
                          corruption_name=CORRUPTIONS[self.corruption])
        if img.ndim == 2:
            out = out[..., 0]
        elif self.channel_order == 'bgr':
            out = out[..., ::-1]
        results['img'] = np.ascontiguousarray(out)
        results['shift'] = dict(name=self.corruption, severity=self.severity)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(corruption={self.corruption!r}, '
                f'severity={self.severity}, seed={self.seed})')


@TRANSFORMS.register_module()
class SyntheticOcclusion(_ShiftBase):
    """Paste seeded patches over randomly chosen labelled distal joints of the instance.

    Required keys: ``img``, ``bbox`` (1x4 xyxy), ``keypoints`` (1xKx2),
    ``keypoints_visible`` (1xK); ``img_id``/``id`` for the seed. Modified keys: ``img``
    only -- keypoints and visibility are untouched. Added keys: ``shift``,
    ``occlusion_boxes`` (Nx4 int xyxy, exclusive right/bottom) and ``occluded_joints``
    (N joint ids; -1 where the instance had no labelled distal joint and the patch was put
    at a random point of the box).

    Args:
        severity (int): 1 ... 5, see :data:`OCCLUSION_LEVELS`.
        seed (int): Base seed; combined with the image id and the instance id.
        joints (Sequence[int], optional): Candidate joint ids; default
            :data:`DISTAL_JOINTS` for the number of keypoints.
        fill (str | tuple): ``'texture'`` (a crop of the same image from elsewhere),
            ``'noise'`` (uniform random pixels), ``'mean'`` (the image's mean colour) or a
            colour tuple.
    """

    FILLS = ('texture', 'noise', 'mean')

    def __init__(self, severity: int, seed: int = 0, joints: Optional[Sequence[int]] = None,
                 fill: Union[str, Sequence[int]] = 'texture'):
        super().__init__(severity, seed)
        if isinstance(fill, str) and fill not in self.FILLS:
            raise ValueError(f'unknown occlusion fill {fill!r}; known: {self.FILLS} '
                             'or a colour tuple')
        self.joints = None if joints is None else tuple(int(j) for j in joints)
        self.fill = fill if isinstance(fill, str) else tuple(int(c) for c in fill)

    def _candidates(self, num_keypoints: int) -> Tuple[int, ...]:
        if self.joints is not None:
            return self.joints
        if num_keypoints not in DISTAL_JOINTS:
            raise ValueError(f'SyntheticOcclusion: no default distal joints for '
                             f'{num_keypoints} keypoints; pass joints=[...]')
        return DISTAL_JOINTS[num_keypoints]

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        kpts = np.asarray(results['keypoints'])[0]
        vis = np.asarray(results['keypoints_visible'])[0]
        vis = vis[..., 0] if vis.ndim > 1 else vis
        x0, y0, x1, y1 = np.asarray(results['bbox'], dtype=np.float64).reshape(-1, 4)[0]
        ss = self._seed_sequence(results, _key(results.get('id', 0)))
        rng = np.random.default_rng(ss)

        labelled = [j for j in self._candidates(len(kpts))
                    if vis[j] > 0 and 0 <= kpts[j, 0] < w and 0 <= kpts[j, 1] < h]
        frac, n_joints = OCCLUSION_LEVELS[self.severity - 1]
        if labelled:
            chosen = [int(j) for j in rng.permutation(labelled)[:n_joints]]
            centres = [kpts[j] for j in chosen]
        else:  # nothing labelled to cover: random points of the box
            chosen = [-1] * n_joints
            centres = [np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
                       for _ in range(n_joints)]

        side = max(frac * np.sqrt(max(x1 - x0, 1.0) * max(y1 - y0, 1.0)), _MIN_PATCH)
        out = img.copy()
        boxes = []
        for c in centres:
            aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
            pw, ph = side * np.sqrt(aspect), side / np.sqrt(aspect)
            jitter = rng.uniform(-0.25, 0.25, size=2) * (pw, ph)
            cx, cy = np.clip(c + jitter, [0, 0], [w - 1, h - 1])
            bx0 = int(np.clip(np.floor(cx - pw / 2), 0, w - 1))
            by0 = int(np.clip(np.floor(cy - ph / 2), 0, h - 1))
            bx1 = int(np.clip(np.ceil(cx + pw / 2), bx0 + 1, w))
            by1 = int(np.clip(np.ceil(cy + ph / 2), by0 + 1, h))
            out[by0:by1, bx0:bx1] = self._patch(img, rng, by1 - by0, bx1 - bx0, (bx0, by0))
            boxes.append((bx0, by0, bx1, by1))

        results['img'] = out
        results['shift'] = dict(name='occlusion', severity=self.severity)
        results['occlusion_boxes'] = np.array(boxes, dtype=np.int64).reshape(-1, 4)
        results['occluded_joints'] = np.array(chosen, dtype=np.int64)
        return results

    def _patch(self, img: np.ndarray, rng: np.random.Generator, ph: int, pw: int,
               at: Tuple[int, int]) -> np.ndarray:
        shape = (ph, pw) + img.shape[2:]
        if self.fill == 'noise':
            return rng.integers(0, 256, size=shape, dtype=np.uint8)
        if self.fill == 'mean':
            return np.broadcast_to(img.reshape(-1, *img.shape[2:]).mean(0).round()
                                   .astype(img.dtype), shape)
        if self.fill == 'texture':
            h, w = img.shape[:2]
            # a source window away from the target (another part of the scene)
            for _ in range(10):
                sx = int(rng.integers(0, max(w - pw, 0) + 1))
                sy = int(rng.integers(0, max(h - ph, 0) + 1))
                if abs(sx - at[0]) >= pw // 2 or abs(sy - at[1]) >= ph // 2:
                    break
            src = img[sy:sy + ph, sx:sx + pw]
            if src.shape[:2] != (ph, pw):  # patch larger than the image
                src = np.resize(src, shape)
            return src[:, ::-1]  # mirrored: no copy of the pixels under it
        return np.broadcast_to(np.array(self.fill, dtype=img.dtype)[:shape[-1]]
                               if img.ndim == 3 else np.uint8(self.fill[0]), shape)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(severity={self.severity}, seed={self.seed}, '
                f'joints={self.joints}, fill={self.fill!r})')


def shift_transform_cfg(shift: str, severity: int, seed: int = 0, **kwargs) -> dict:
    """The transform config of one shift (``kwargs`` go to the transform)."""
    check_shift(shift)
    severity = check_severity(severity)
    if shift == 'occlusion':
        return dict(type='SyntheticOcclusion', severity=severity, seed=seed, **kwargs)
    return dict(type='ImageCorruption', corruption=shift, severity=severity, seed=seed,
                **kwargs)


def shift_pipeline(base_pipeline: Sequence[dict], shift: Optional[str], severity: int = 1,
                   seed: int = 0, **kwargs) -> List[dict]:
    """A copy of ``base_pipeline`` with the shift inserted before the first
    ``TopdownAffine`` (``shift=None``: an unchanged copy).

    Raises ``ValueError`` for an unknown shift, a severity outside 1-5, or a pipeline
    without ``TopdownAffine``.
    """
    pipeline = [copy.deepcopy(dict(t)) for t in base_pipeline]
    if shift is None:
        return pipeline
    cfg = shift_transform_cfg(shift, severity, seed, **kwargs)
    names = [t.get('type') for t in pipeline]
    idx = next((i for i, n in enumerate(names)
                if n == 'TopdownAffine' or getattr(n, '__name__', None) == 'TopdownAffine'),
               None)
    if idx is None:
        raise ValueError(f'shift_pipeline: no TopdownAffine in the pipeline {names}')
    pipeline.insert(idx, cfg)
    return pipeline
