"""COCO keypoint AP through MMPose's ``CocoMetric``, plus COCOeval's per-image matches.

:func:`coco_evaluate` feeds predictions (arrays in original image pixels) to
``CocoMetric`` exactly as the test loop would, and re-reads the results file it writes
with ``xtcocotools.COCOeval`` to keep the per-image matches for the bootstrap
(:class:`~.metrics.MatchTable`). The two APs agree by construction; the pipeline
checks it.
"""
import contextlib
import io
import json
import os
import os.path as osp
from typing import Dict, Sequence, Tuple

import numpy as np

from .metrics import MatchTable

#: COCO-17 face keypoints (nose, eyes, ears), unlabelled in LSPET.
FACE_JOINTS = (0, 1, 2, 3, 4)


def write_limb_only_ann(src: str, dst: str, drop: Sequence[int] = FACE_JOINTS) -> str:
    """A copy of a COCO keypoint file with the ``drop`` keypoints unlabelled.

    Each dropped keypoint becomes ``[0, 0, 0]`` and ``num_keypoints`` is recounted, so
    that COCOeval scores only the remaining joints (an annotation left with no labelled
    joint is ignored by COCOeval, as usual). Written only if ``dst`` is missing or older
    than ``src``.

    Returns:
        str: ``dst``.
    """
    if osp.exists(dst) and osp.getmtime(dst) >= osp.getmtime(src):
        return dst
    with open(src) as f:
        data = json.load(f)
    for ann in data['annotations']:
        kpts = ann.get('keypoints')
        if not kpts:
            continue
        for k in drop:
            kpts[3 * k:3 * k + 3] = [0, 0, 0]
        ann['num_keypoints'] = int(sum(1 for v in kpts[2::3] if v > 0))
    data.setdefault('info', {})['derived'] = (
        f'keypoints {list(drop)} set unlabelled (v=0) for limb-only scoring; '
        f'source {osp.basename(src)}')
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = dst + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f)
    os.replace(tmp, dst)
    return dst


def coco_evaluate(ann_file: str, dataset_meta: dict, meta: dict, keypoints: np.ndarray,
                  scores: np.ndarray, outfile_prefix: str
                  ) -> Tuple[Dict[str, float], MatchTable, list]:
    """Score top-down predictions with ``CocoMetric``.

    Args:
        ann_file (str): COCO keypoint annotation file.
        dataset_meta (dict): The dataset's metainfo (``sigmas``, ``num_keypoints``...).
        meta (dict): Per-instance arrays from the cache: ``id``, ``img_id``,
            ``category_id``, ``bbox_scores``, ``bbox_scales``.
        keypoints (ndarray[N, K, 2]), scores (ndarray[N, K]): Predictions in original
            image pixels.
        outfile_prefix (str): Where CocoMetric writes ``<prefix>.keypoints.json``.

    Returns:
        tuple: CocoMetric's metrics (``AP``, ``AP .5``, ``AP .75``, ``AR``, ...), the
        per-image matches as a :class:`MatchTable` over the sorted image ids of
        ``ann_file``, and those image ids.
    """
    from mmpose.evaluation.metrics import CocoMetric

    os.makedirs(osp.dirname(osp.abspath(outfile_prefix)), exist_ok=True)
    metric = CocoMetric(ann_file=ann_file, outfile_prefix=outfile_prefix)
    metric.dataset_meta = dataset_meta
    samples = []
    for i in range(len(keypoints)):
        samples.append(dict(
            id=int(meta['id'][i]), img_id=int(meta['img_id'][i]),
            category_id=int(meta['category_id'][i]),
            pred_instances=dict(keypoints=np.asarray(keypoints[i:i + 1], np.float32),
                                keypoint_scores=np.asarray(scores[i:i + 1], np.float32)),
            gt_instances=dict(bbox_scores=np.asarray(meta['bbox_scores'][i:i + 1]),
                              bbox_scales=np.asarray(meta['bbox_scales'][i:i + 1]))))
    with contextlib.redirect_stdout(io.StringIO()):
        metric.process([], samples)
        metrics = metric.compute_metrics(metric.results)
        table, img_ids = coco_matches(metric.coco, outfile_prefix + '.keypoints.json',
                                      dataset_meta['sigmas'])
    return dict(metrics), table, img_ids


def coco_matches(coco_gt, res_file: str, sigmas: np.ndarray
                 ) -> Tuple[MatchTable, list]:
    """COCOeval's per-image matches of a results file (area 'all', maxDets 20), with the
    same settings as ``CocoMetric`` (``use_area=True``)."""
    from xtcocotools.cocoeval import COCOeval

    coco_det = coco_gt.loadRes(res_file)
    ev = COCOeval(coco_gt, coco_det, 'keypoints', np.asarray(sigmas), True)
    ev.params.useSegm = None
    ev.evaluate()
    img_ids = list(ev.params.imgIds)
    n_img = len(img_ids)
    # evalImgs is ordered [category][area range][image]; area range 0 is 'all'
    entries = ev.evalImgs[:n_img]
    return MatchTable(entries, ev.params.maxDets[-1]), img_ids
