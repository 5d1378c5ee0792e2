"""B12: ``MMPoseInferencer`` / ``Pose2DInferencer`` with a top-down model (SCAI or not).

Three problems of MMPose 1.3.2 on this stack, fixed by wrapping three functions of
``mmpose.apis.inferencers``:

1. ``inferencer(img, bboxes=...)`` ignores the boxes: ``preprocess_single`` resets them
   and runs the detector (or takes the whole image). With boxes given, one instance per
   box is made from them, and the detector is not run.
2. Without a working MMDetection, a top-down inferencer fails with ``MMDetection
   (v3.0.0 or above) is required`` although mmdet is installed: its import fails on
   mmcv-lite (``No module named 'mmcv.ops.roi_align'``, no compiled ops). The error now
   names that cause and the workaround (``det_model='whole_image'`` and ``bboxes=``).
3. The predictions (returned dicts and ``pred_out_dir`` JSON) hold only keypoints,
   scores and boxes; per-keypoint fields of ``pred_instances`` that MMPose does not know,
   such as SCAI's ``keypoint_self_errors``, are dropped. They are now added (a NaN,
   e.g. the E_s of a keypoint in no refined chain, as ``None``: JSON ``null``).
"""
from typing import List, Sequence

import numpy as np

#: Per-keypoint fields of ``pred_instances`` copied into the inferencer's predictions.
EXTRA_KEYPOINT_FIELDS = ('keypoint_self_errors', )

_applied = False


def needed() -> bool:
    """True when MMPose's inferencers are importable (the fixes are behaviour-neutral
    where MMPose already does the right thing). False also where another shim is
    switched off, or mmcv is broken, and the import fails (the user's own import of
    ``mmpose.apis`` reports that)."""
    try:
        import mmpose.apis.inferencers  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return True


def is_applied() -> bool:
    return _applied


def mmdet_import_error() -> str:
    """Why ``mmdet.apis.DetInferencer`` cannot be imported here ('' if it can)."""
    try:
        from mmdet.apis.det_inferencer import DetInferencer  # noqa: F401
    except Exception as e:  # noqa: BLE001  (any import failure is the cause to report)
        return f'{type(e).__name__}: {e}'
    return ''


def _instances_from_boxes(self, input, index: int, bboxes: Sequence) -> List:
    """One pipeline result per given box (``[x1, y1, x2, y2]`` or with a score)."""
    if np.ndim(bboxes[0]) == 0:  # one box given flat
        bboxes = [bboxes]
    if isinstance(input, str):
        info = dict(img_path=input)
    else:
        info = dict(img=input, img_path=f'{index}.jpg'.rjust(10, '0'))
    info.update(self.model.dataset_meta)
    out = []
    for box in bboxes:
        box = np.asarray(box, dtype=np.float32).reshape(-1)
        if len(box) not in (4, 5):
            raise ValueError('bboxes: each box must be [x1, y1, x2, y2] or '
                             f'[x1, y1, x2, y2, score], got {box.tolist()}')
        score = box[4:5] if len(box) == 5 else np.ones(1, dtype=np.float32)
        out.append(self.pipeline(dict(info, bbox=box[None, :4], bbox_score=score)))
    return out


def apply() -> bool:
    """Wrap the inferencer functions if needed; return whether in effect."""
    global _applied
    if _applied:
        return True
    if not needed():
        return False
    from mmpose.apis.inferencers import base_mmpose_inferencer as base
    from mmpose.apis.inferencers.pose2d_inferencer import Pose2DInferencer

    preprocess_single = Pose2DInferencer.preprocess_single

    def _preprocess_single(self, input, index: int, bbox_thr: float = 0.3,
                           nms_thr: float = 0.3, bboxes: Sequence = ()):
        if self.cfg.data_mode == 'topdown' and len(bboxes) > 0:
            return _instances_from_boxes(self, input, index, bboxes)
        return preprocess_single(self, input, index, bbox_thr=bbox_thr, nms_thr=nms_thr,
                                 bboxes=bboxes)

    init_detector = base.BaseMMPoseInferencer._init_detector

    def _init_detector(self, *args, **kwargs):
        try:
            return init_detector(self, *args, **kwargs)
        except RuntimeError as e:
            if 'MMDetection' not in str(e):
                raise
            cause = mmdet_import_error() or 'mmdet was not importable at start-up'
            if 'mmcv' in cause:
                cause += '; mmcv-lite has no compiled ops'
            raise RuntimeError(
                'This top-down inferencer needs a person detector from MMDetection, '
                f'which cannot be imported here ({cause}). Pass det_model='
                "'whole_image' and give the person boxes per image with "
                'inferencer(img, bboxes=[[x1, y1, x2, y2], ...]) (without boxes the '
                'whole image is one person), or make `import mmdet.apis` work (full '
                'mmcv with compiled ops).') from e

    split_instances = base.split_instances

    def _split_instances(instances) -> List[dict]:
        results = split_instances(instances)
        for name in EXTRA_KEYPOINT_FIELDS:
            if instances is not None and name in instances:
                values = np.asarray(instances.get(name), dtype=np.float64)
                for i, result in enumerate(results):
                    result[name] = [v if np.isfinite(v) else None
                                    for v in values[i].tolist()]
        return results

    Pose2DInferencer.preprocess_single = _preprocess_single
    base.BaseMMPoseInferencer._init_detector = _init_detector
    base.split_instances = _split_instances
    _applied = True
    return True
