"""SCAI-Lite training on keypoints alone: pose priors, measured base errors, fine-tuning.

The coordinate refiner (:class:`~.lite.SCAILiteRefiner`) needs no image, so Φ, Γ and C
can be pre-trained on 2D poses without images (``pose_priors/``: COCO-17, MPII-16 and
LSP-14 poses, mapped to COCO-17 slots by joint name), with the distal joints perturbed by
errors *sampled from the base model's measured errors* on the validation split, and then
fine-tuned on the base's real predictions. Every loss is the head's own
(:meth:`SCAIHead.loss_phi`, :meth:`~SCAIHead.loss_gamma`,
:meth:`~SCAIHead.loss_correction`), fed :class:`ChainInputs` / :class:`ChainTargets`
built from points instead of heatmaps.

Units: points are heatmap pixels of the base codec's frame (``heatmap_size`` (w, h)) until
:meth:`SCAILiteRefiner.points_to_inputs` normalizes them.
"""
import os.path as osp
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from .data_root import resolve_data_root
from mmpose_scai.models.utils.heatmaps import heatmap_peaks
from mmpose_scai.models.refiners.lite_refiner import normalize_points
from mmpose_scai.structures import ChainInputs, ChainTargets

COCO17 = ('nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder',
          'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
          'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle')
COCO17_FLIP = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
#: Joint names that play the neck (the chains' anchor) in each source.
NECK_NAMES = ('neck', 'thorax')
PRIOR_FILES = dict(coco17='coco17_poses.npz', mpii16='mpii16_poses.npz',
                   lsp14='lsp14_poses.npz')


# ------------------------------------------------------------------------- priors
def map_to_coco17(keypoints: np.ndarray, visible: np.ndarray, names: Sequence[str]
                  ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Map a dataset's joints to COCO-17 slots by name.

    Joints without a COCO-17 slot are dropped (MPII pelvis, upper_neck, head_top; LSP
    head_top); COCO slots the source lacks (the face for MPII/LSP) are unlabelled. The
    neck is the source's own ``neck``/``thorax`` joint, or, for COCO, the midpoint of
    the two shoulders.

    Returns:
        tuple: keypoints (float32[N, 17, 2]), visible (bool[N, 17]), neck
        (float32[N, 2]) and neck_visible (bool[N]).
    """
    names = [str(n) for n in names]
    n = len(keypoints)
    kpts = np.zeros((n, 17, 2), np.float32)
    vis = np.zeros((n, 17), bool)
    for k, name in enumerate(COCO17):
        if name in names:
            j = names.index(name)
            kpts[:, k] = keypoints[:, j]
            vis[:, k] = visible[:, j] > 0
    neck_name = next((nm for nm in NECK_NAMES if nm in names), None)
    if neck_name is not None:
        neck = keypoints[:, names.index(neck_name)].astype(np.float32)
        neck_vis = visible[:, names.index(neck_name)] > 0
    else:
        neck = kpts[:, 5:7].mean(1)
        neck_vis = vis[:, 5] & vis[:, 6]
    return kpts, vis, neck, neck_vis


def load_pose_priors(root: Optional[str] = None,
                     sources: Sequence[str] = ('coco17', 'mpii16', 'lsp14')) -> dict:
    """Load ``pose_priors/*.npz`` in COCO-17 layout.

    Args:
        root (str, optional): The data root (default :func:`resolve_data_root`).
        sources (Sequence[str]): Which files (keys of :data:`PRIOR_FILES`).

    Returns:
        dict: ``keypoints`` (float32[N, 17, 2], image pixels), ``visible``
        (bool[N, 17]), ``bbox`` (float32[N, 4] xywh), ``box_scale`` (float32[N]: 1 for
        official boxes, 1.15 for tight joint boxes, as the LSPET boxes), ``neck``,
        ``neck_visible`` and ``source`` (str[N]).
    """
    root = osp.join(root or resolve_data_root(allow_demo=False), 'pose_priors')
    parts = []
    for src in sources:
        d = np.load(osp.join(root, PRIOR_FILES[src]))
        kpts, vis, neck, neck_vis = map_to_coco17(d['keypoints'], d['visibility'],
                                                  d['keypoint_names'])
        tight = 'tight' in str(d['bbox_semantics']).lower() or src != 'coco17'
        parts.append(dict(keypoints=kpts, visible=vis, bbox=d['bbox'].astype(np.float32),
                          box_scale=np.full(len(kpts), 1.15 if tight else 1., np.float32),
                          neck=neck, neck_visible=neck_vis,
                          source=np.array([src] * len(kpts))))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def to_heatmap_frame(keypoints: np.ndarray, bbox: np.ndarray, box_scale: np.ndarray,
                     heatmap_size: Sequence[int], padding: float = 1.25) -> np.ndarray:
    """Image pixels -> heatmap pixels of the top-down crop of each box.

    As ``GetBBoxCenterScale(padding)`` + ``TopdownAffine`` (aspect ratio of
    ``heatmap_size``) + an MSRA-style codec do.

    Args:
        keypoints (ndarray[N, ..., 2]): Image pixels.
        bbox (ndarray[N, 4]): xywh.
        box_scale (ndarray[N]): Extra box enlargement before the padding.
        heatmap_size (tuple): (w, h).
    """
    w_hm, h_hm = heatmap_size
    centre = bbox[:, :2] + bbox[:, 2:] / 2
    wh = bbox[:, 2:] * (box_scale * padding)[:, None]
    aspect = w_hm / h_hm
    w = np.where(wh[:, 0] > wh[:, 1] * aspect, wh[:, 0], wh[:, 1] * aspect)
    h = np.where(wh[:, 0] > wh[:, 1] * aspect, wh[:, 0] / aspect, wh[:, 1])
    scale = np.stack([w, h], -1)
    extra = (1, ) * (keypoints.ndim - 2)
    c = centre.reshape(len(centre), *extra, 2)
    s = scale.reshape(len(scale), *extra, 2)
    return ((keypoints - c + s / 2) / s * np.array([w_hm, h_hm])).astype(np.float32)


def augment(points: np.ndarray, visible: np.ndarray, heatmap_size: Sequence[int],
            rng: np.random.Generator, flip_prob: float = 0.5, rot_std: float = 15.,
            rot_max: float = 30., scale_range: Tuple[float, float] = (0.85, 1.15),
            flip_indices: Sequence[int] = COCO17_FLIP) -> Tuple[np.ndarray, np.ndarray]:
    """Random flip, rotation and scale about the frame centre (heatmap pixels)."""
    pts, vis = points.copy(), visible.copy()
    n = len(pts)
    w, h = heatmap_size
    centre = np.array([(w - 1) / 2, (h - 1) / 2], np.float32)
    flip = rng.random(n) < flip_prob
    pts[flip] = pts[flip][:, list(flip_indices)]
    vis[flip] = vis[flip][:, list(flip_indices)]
    pts[flip, :, 0] = 2 * centre[0] - pts[flip, :, 0]
    theta = np.deg2rad(np.clip(rng.normal(0, rot_std, n), -rot_max, rot_max))
    scale = rng.uniform(*scale_range, n)
    cos, sin = np.cos(theta) * scale, np.sin(theta) * scale
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    pts = np.einsum('nij,nkj->nki', rot, pts - centre) + centre
    return pts.astype(np.float32), vis


# ------------------------------------------------------------------- base errors
class ErrorModel:
    """Per keypoint, a pool of (error vector, score) pairs to sample from.

    Built from the base model's measured predictions (:meth:`from_predictions`) or, with
    no base, from the stated empirical fallback (:meth:`empirical`). Errors are in
    heatmap pixels.

    Args:
        errors (list[ndarray[M_k, 2]]): Error vectors (prediction − truth) of keypoint k.
        scores (list[ndarray[M_k]]): The base's scores of the same predictions.
        source (str): ``'measured'`` or ``'empirical'``.
    """

    def __init__(self, errors: List[np.ndarray], scores: List[np.ndarray],
                 source: str = 'measured') -> None:
        self.errors, self.scores, self.source = errors, scores, source

    @classmethod
    def from_predictions(cls, pred: np.ndarray, scores: np.ndarray, gt: np.ndarray,
                         weight: np.ndarray, min_samples: int = 20,
                         heatmap_size: Sequence[int] = (24, 32)) -> 'ErrorModel':
        """Pools from base predictions (heatmap pixels) on a validation split.

        A keypoint with fewer than ``min_samples`` labelled predictions (the face on
        LSPET) takes the empirical fallback's pool.
        """
        fallback = cls.empirical(pred.shape[1], heatmap_size)
        errs, scs = [], []
        for k in range(pred.shape[1]):
            ok = (weight[:, k] > 0) & np.isfinite(pred[:, k]).all(-1)
            if ok.sum() >= min_samples:
                errs.append((pred[ok, k] - gt[ok, k]).astype(np.float32))
                scs.append(scores[ok, k].astype(np.float32))
            else:
                errs.append(fallback.errors[k])
                scs.append(fallback.scores[k])
        return cls(errs, scs, 'measured')

    @classmethod
    def empirical(cls, num_keypoints: int, heatmap_size: Sequence[int] = (24, 32),
                  size: int = 4000, seed: int = 0) -> 'ErrorModel':
        """The fallback without a base: 75 % inliers with an isotropic Gaussian error of
        0.75 heatmap pixels (score ~ U(0.5, 0.9)) and 25 % gross errors uniform in a
        disc of radius 0.3·h (score ~ U(0.05, 0.4)); the same for every keypoint."""
        rng = np.random.default_rng(seed)
        radius = 0.3 * heatmap_size[1]
        errs, scs = [], []
        for _ in range(num_keypoints):
            gross = rng.random(size) < 0.25
            e = rng.normal(0, 0.75, (size, 2))
            r = radius * np.sqrt(rng.random(size))
            a = rng.uniform(0, 2 * np.pi, size)
            e[gross] = np.stack([r * np.cos(a), r * np.sin(a)], -1)[gross]
            s = np.where(gross, rng.uniform(0.05, 0.4, size), rng.uniform(0.5, 0.9, size))
            errs.append(e.astype(np.float32))
            scs.append(s.astype(np.float32))
        return cls(errs, scs, 'empirical')

    def sample(self, n: int, rng: np.random.Generator, accurate: bool = False
               ) -> Tuple[np.ndarray, np.ndarray]:
        """Errors (float32[n, K, 2]) and scores (float32[n, K]), independently per
        keypoint; ``accurate``: only from the predictions within 1.5 heatmap pixels."""
        k = len(self.errors)
        err = np.zeros((n, k, 2), np.float32)
        sc = np.zeros((n, k), np.float32)
        for j in range(k):
            e, s = self.errors[j], self.scores[j]
            if accurate:
                near = np.linalg.norm(e, axis=-1) <= 1.5
                if near.any():
                    e, s = e[near], s[near]
            idx = rng.integers(0, len(e), n)
            err[:, j], sc[:, j] = e[idx], s[idx]
        return err, sc

    def summary(self) -> Dict[str, float]:
        """Median error (heatmap pixels) and mean score, pooled over keypoints."""
        e = np.concatenate([np.linalg.norm(x, axis=-1) for x in self.errors])
        return dict(source=self.source, median_error_px=float(np.median(e)),
                    mean_error_px=float(e.mean()),
                    mean_score=float(np.concatenate(self.scores).mean()))


# ------------------------------------------------------------ chain inputs / targets
def chain_targets(refiner, gt_points: Tensor, weights: Tensor, inp: ChainInputs,
                  size: Sequence[int]) -> ChainTargets:
    """:class:`ChainTargets` from ground-truth points, as :meth:`SCAIHead.prepare_train`
    builds them from target heatmaps (a chain counts where all four slots are labelled
    and its inputs are valid).

    Args:
        gt_points (Tensor[B, K, 2]): heatmap pixels; weights (Tensor[B, K]): > 0 labelled.
    """
    chains = refiner.chains
    pts = refiner._chain_points(gt_points.float(), size)
    w = weights > 0
    pairs = chains.virtual_pairs.to(w.device)
    vw = w[:, pairs].all(-1) if pairs.numel() else w[:, :0]
    labelled = chains.gather(chains.extend(w, vw), 'ABCD')
    return ChainTargets(pts[:, :, 0], pts[:, :, 1], pts[:, :, 2], pts[:, :, 3],
                        mask=labelled.all(-1) & inp.valid)


def distal_keypoints(refiner) -> List[int]:
    """Keypoint ids in slot D of any chain."""
    return sorted(set(refiner.chains.index[:, 3].tolist()))


def prior_batches(priors: dict, refiner, errors: ErrorModel, heatmap_size: Sequence[int],
                  batch_size: int = 256, seed: int = 0, perturb: str = 'distal',
                  anchor: str = 'virtual') -> Iterator[Tuple[ChainInputs, ChainTargets]]:
    """One shuffled, augmented epoch over the pose priors.

    Args:
        priors (dict): From :func:`load_pose_priors`.
        refiner (SCAILiteRefiner): Gives the chains and the input format.
        errors (ErrorModel): Where the input errors are sampled from.
        heatmap_size (tuple): The base codec's (w, h).
        perturb (str): ``'distal'`` (the issue: the D joints get sampled errors, the
            others only sampled scores of accurate predictions) or ``'all'``.
        anchor (str): ``'virtual'`` (the chains' own anchor, mid-shoulder for COCO,
            as at test time) or ``'named'`` (the source's neck/thorax where it has one).
    """
    rng = np.random.default_rng(seed)
    frame = to_heatmap_frame(priors['keypoints'], priors['bbox'], priors['box_scale'],
                             heatmap_size)
    neck = to_heatmap_frame(priors['neck'][:, None], priors['bbox'], priors['box_scale'],
                            heatmap_size)[:, 0]
    distal = distal_keypoints(refiner)
    order = rng.permutation(len(frame))
    for i in range(0, len(order) - batch_size + 1, batch_size):
        idx = order[i:i + batch_size]
        both = np.concatenate([frame[idx], neck[idx, None]], 1)
        vis = np.concatenate([priors['visible'][idx], priors['neck_visible'][idx, None]], 1)
        flip = COCO17_FLIP + (17, )
        both, vis = augment(both, vis, heatmap_size, rng, flip_indices=flip)
        clean, named_neck = both[:, :17], both[:, 17]
        err, sc = errors.sample(len(idx), rng)
        _, sc_ok = errors.sample(len(idx), rng, accurate=True)
        noisy = clean.copy()
        if perturb == 'all':
            noisy += err
        else:
            noisy[:, distal] += err[:, distal]
            keep = np.setdiff1d(np.arange(17), distal)
            sc[:, keep] = sc_ok[:, keep]
        inp = refiner.points_to_inputs(torch.from_numpy(noisy), torch.from_numpy(sc),
                                       heatmap_size)
        tgt = chain_targets(refiner, torch.from_numpy(clean), torch.from_numpy(vis[:, :17]),
                            inp, heatmap_size)
        if anchor == 'named':
            has = torch.from_numpy(vis[:, 17])
            a = normalize_points(torch.from_numpy(named_neck), heatmap_size)[:, None, None]
            tgt.A = torch.where(has[:, None, None, None], a.expand_as(tgt.A), tgt.A)
        yield inp, tgt


def point_batches(points: dict, refiner, heatmap_size: Sequence[int],
                  batch_size: int = 256, seed: Optional[int] = 0,
                  enabled: Optional[Tensor] = None
                  ) -> Iterator[Tuple[ChainInputs, ChainTargets]]:
    """Batches of the base's real predictions (:func:`collect_points` output).

    ``seed=None`` keeps the order (evaluation) and the last partial batch.
    """
    n = len(points['pred'])
    order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    stop = n if seed is None else n - batch_size + 1
    for i in range(0, max(stop, 0), batch_size):
        idx = torch.from_numpy(order[i:i + batch_size])
        inp = refiner.points_to_inputs(points['pred'][idx], points['scores'][idx],
                                       heatmap_size, enabled)
        yield inp, chain_targets(refiner, points['gt'][idx], points['weight'][idx], inp,
                                 heatmap_size)


# ---------------------------------------------------------------------- training
def fit(head, batches: Callable[[int], Iterator[Tuple[ChainInputs, ChainTargets]]],
        epochs: int, stage: str, lr: float = 1e-3, lr_decay: float = 0.97,
        max_rounds: int = 3, log: Optional[Callable[[str], None]] = None
        ) -> List[Dict[str, float]]:
    """Train the refiner of ``head`` with the head's own losses, one optimizer per network.

    Args:
        head (SCAIHead): A head whose refiner is a :class:`SCAILiteRefiner`.
        batches (callable): ``epoch -> iterator of (ChainInputs, ChainTargets)``.
        epochs (int): Passes.
        stage (str): ``'pretrain'`` (Φ and Γ alternating on L_Φ, L_Γ), ``'correct'``
            (C on L_C, one round; Γ on L_Γ of corrected inputs) or ``'multi_round'``
            (the same with R ~ U{1..max_rounds} rounds).
        lr, lr_decay (float): Adam's lr, multiplied by ``lr_decay`` after each epoch.

    Returns:
        list: mean losses per epoch.
    """
    refiner = head.refiner
    nets = dict(phi=refiner.phi, gamma=refiner.gamma, corr=refiner.corr)
    optims = {k: torch.optim.Adam(v.parameters(), lr=lr) for k, v in nets.items()}
    was_training = refiner.training
    refiner.train()
    history = []

    def step(name: str, losses: Dict[str, Tensor]) -> Dict[str, float]:
        loss = sum(v for k, v in losses.items() if k.startswith('loss'))
        for o in optims.values():
            o.zero_grad(set_to_none=True)
        loss.backward()
        optims[name].step()
        return {k: float(v.detach()) for k, v in losses.items()}

    for epoch in range(epochs):
        for o in optims.values():
            for g in o.param_groups:
                g['lr'] = lr * lr_decay**epoch
        sums, count = {}, 0
        for inp, tgt in batches(epoch):
            if not tgt.mask.any():
                continue
            logs = {}
            if stage == 'pretrain':
                logs.update(step('phi', head.loss_phi(inp, tgt, None)))
                logs.update(step('gamma', head.loss_gamma(inp, tgt, None)))
            else:
                rounds = 1 if stage == 'correct' else int(np.random.randint(1, max_rounds + 1))
                losses, state = head.loss_correction(inp, tgt, None, rounds)
                logs.update(step('corr', losses))
                logs.update(step('gamma', head.loss_gamma(inp, tgt, None, state=state)))
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.) + v
            count += 1
        row = {k: v / max(count, 1) for k, v in sums.items()}
        row.update(epoch=epoch, stage=stage, batches=count)
        history.append(row)
        if log:
            log(f'[{stage}] epoch {epoch}: ' + ', '.join(
                f'{k}={v:.4f}' for k, v in row.items() if isinstance(v, float)))
    refiner.train(was_training)
    return history


@torch.no_grad()
def evaluate_points(refiner, batches: Iterator[Tuple[ChainInputs, ChainTargets]],
                    heatmap_size: Sequence[int], rounds: int = 1, adapter=None,
                    oks_px: float = 2.0) -> Dict[str, float]:
    """Distal error of the base and of the refinement, in heatmap pixels.

    Returns:
        dict: mean D error of the base (``base_px``), after refinement (``refined_px``),
        of the start state (``phi_px``: Φ's D, or the base's with ``start='base'``), of
        one correction round without the E_s gate (``corrected_px``), the fraction of
        chains that kept the base (``use_base_frac``), an OKS-like similarity
        ``exp(−d²/2·oks_px²)`` (``*_oks``; 2 heatmap px ≈ the COCO wrist/ankle
        tolerance of an LSPET crop) and the fraction within 2 px (``*_within2``), over
        chains with a labelled D (``chains``).
    """
    refiner.eval()
    scale = float(max(heatmap_size))
    sums = dict(base_px=0., refined_px=0., phi_px=0., corrected_px=0., use_base_frac=0.,
                E_s=0., base_oks=0., refined_oks=0., base_within2=0., refined_within2=0.)
    n = 0
    for inp, tgt in batches:
        if adapter is not None:
            with torch.enable_grad():
                state, err, stats = adapter.refine(refiner, inp, rounds, 1e-3)
        else:
            state, err, stats = refiner.refine(inp, rounds, 1e-3)
        phi = refiner.start(inp)
        corrected = refiner.correct(phi, refiner.self_error(inp, phi)[1])  # ungated
        m = tgt.mask
        if not m.any():
            continue

        def dist(d):
            return ((d - tgt.D)[..., 0, :].norm(dim=-1) * scale)[m]

        for name, d in (('base', dist(inp.base.D)), ('refined', dist(state.D))):
            sums[f'{name}_px'] += d.sum().item()
            sums[f'{name}_oks'] += torch.exp(-d**2 / (2 * oks_px**2)).sum().item()
            sums[f'{name}_within2'] += (d <= 2).float().sum().item()
        sums['phi_px'] += dist(phi.D).sum().item()
        sums['corrected_px'] += dist(corrected.D).sum().item()
        sums['use_base_frac'] += stats['use_base'][m].float().sum().item()
        sums['E_s'] += err[m].sum().item()
        n += int(m.sum())
    out = {k: v / max(n, 1) for k, v in sums.items()}
    out['chains'] = n
    return out


# ------------------------------------------------------------ base predictions
@torch.no_grad()
def collect_points(model, loader, keep_heatmaps: bool = False,
                   progress: Optional[Callable[[int, int], None]] = None) -> dict:
    """Run a base top-down model over ``loader`` (whose pipeline ends with
    ``GenerateTarget`` + ``PackPoseInputs``) and keep decoded points.

    Returns:
        dict: ``pred`` (Tensor[N, K, 2], heatmap pixels of the base's peaks),
        ``scores`` (Tensor[N, K]), ``gt`` (Tensor[N, K, 2], peaks of the codec's target
        heatmaps), ``weight`` (Tensor[N, K]), optionally ``heatmaps`` (float16) and
        the per-instance ``meta`` to map decoded keypoints to image pixels.
    """
    model.eval()
    head = getattr(model.head, 'base_head', model.head)
    out = dict(pred=[], scores=[], gt=[], weight=[], heatmaps=[])
    meta = dict(id=[], img_id=[], input_center=[], input_scale=[], input_size=[],
                bbox_scores=[], bbox_scales=[], category_id=[])
    total, done = len(loader.dataset), 0
    for data in loader:
        data = model.data_preprocessor(data, False)
        samples = data['data_samples']
        hm = head.forward(model.extract_feat(data['inputs'])).float()
        coords, maxvals = heatmap_peaks(hm)
        gt = torch.stack([s.gt_fields.heatmaps for s in samples]).float()
        gt_coords, _ = heatmap_peaks(gt)
        out['pred'].append(coords)
        out['scores'].append(maxvals.clamp(0, 1))
        out['gt'].append(gt_coords)
        out['weight'].append(torch.cat(
            [s.gt_instance_labels.keypoint_weights for s in samples]).float())
        if keep_heatmaps:
            out['heatmaps'].append(hm.half())
        for s in samples:
            meta['id'].append(int(s.metainfo['id']))
            meta['img_id'].append(int(s.metainfo['img_id']))
            meta['category_id'].append(int(s.metainfo.get('category_id', 1)))
            meta['input_center'].append(np.asarray(s.metainfo['input_center'], np.float32))
            meta['input_scale'].append(np.asarray(s.metainfo['input_scale'], np.float32))
            meta['input_size'].append(np.asarray(s.metainfo['input_size'], np.float32))
            gi = s.gt_instances
            meta['bbox_scores'].append(float(np.asarray(gi.bbox_scores).reshape(-1)[0]))
            meta['bbox_scales'].append(np.asarray(gi.bbox_scales, np.float32).reshape(2))
        done += len(samples)
        if progress:
            progress(done, total)
    res = {k: torch.cat(v) for k, v in out.items() if v}
    res['meta'] = {k: np.stack([np.asarray(x) for x in v]) for k, v in meta.items()}
    res['heatmap_size'] = (int(hm.shape[-1]), int(hm.shape[-2]))
    return res


def base_error_model(points: dict, min_samples: int = 20) -> ErrorModel:
    """The :class:`ErrorModel` of measured base predictions (``collect_points``)."""
    return ErrorModel.from_predictions(points['pred'].cpu().numpy(), points['scores'].cpu().numpy(),
                                       points['gt'].cpu().numpy(), points['weight'].cpu().numpy(),
                                       min_samples, points['heatmap_size'])


__all__ = [
    'COCO17', 'ErrorModel', 'augment', 'base_error_model', 'chain_targets',
    'collect_points', 'evaluate_points', 'fit', 'load_pose_priors', 'map_to_coco17',
    'point_batches', 'prior_batches', 'to_heatmap_frame'
]
