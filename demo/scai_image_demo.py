"""Base vs +SCAI on your own photos: side-by-side overlays and a predictions JSON.

Each person is predicted twice by one SCAI model, with the refinement off (the base
model exactly) and on (optionally with test-time adaptation); the two results are drawn
side by side at the same scale, keypoints that SCAI moved are ringed with an arrow from
the base position, and each refined keypoint shows its self-referential error E_s.

Example:
    python demo/scai_image_demo.py CONFIG CHECKPOINT --input photo.jpg \\
        --bboxes 10 20 200 400 --output-root vis/
    python demo/scai_image_demo.py CONFIG CHECKPOINT --input photos/ --tta
    python demo/scai_image_demo.py CONFIG CHECKPOINT --input clip.mp4

Boxes: ``--bboxes x1 y1 x2 y2 [x1 y1 x2 y2 ...]`` for every image, or
``--bboxes-file boxes.json`` (``{"image file name": [[x1, y1, x2, y2], ...]}``); without
either, the whole image is one person box.
"""
import argparse
import json
import os
import os.path as osp
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp')
VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv')
BASE_COLOUR, SCAI_COLOUR, MOVED_COLOUR = '#1f77b4', '#2ca02c', '#d62728'


@contextmanager
def test_settings(model, **test_cfg) -> Iterator[None]:
    """``model.test_cfg`` updated with ``test_cfg`` (``refine``, ``tta``, ...) inside the
    block; the head's adapter is rebuilt from it and dropped afterwards."""
    saved = dict(model.test_cfg)
    model.test_cfg.update(test_cfg)
    model.head.adapter = None
    try:
        yield
    finally:
        model.test_cfg.clear()
        model.test_cfg.update(saved)
        model.head.adapter = None


def predict_pair(model, img: np.ndarray, bboxes: np.ndarray, tta: bool = False
                 ) -> Dict[str, np.ndarray]:
    """Base and +SCAI predictions of the persons ``bboxes`` (float[N, 4], xyxy) in ``img``.

    Returns:
        dict: ``base``/``scai`` keypoints (float[N, K, 2]) and scores (float[N, K]),
        ``self_errors`` (float[N, K], NaN for keypoints in no refined chain), ``bboxes``.
    """
    from mmpose.apis import inference_topdown
    out = {}
    for name, refine in (('base', False), ('scai', True)):
        with test_settings(model, refine=refine,
                           tta=dict(preset='default') if tta else None):
            samples = inference_topdown(model, img, bboxes, bbox_format='xyxy')
        inst = [s.pred_instances for s in samples]
        out[name] = np.concatenate([i.keypoints for i in inst]).astype(np.float32)
        out[name + '_scores'] = np.concatenate([i.keypoint_scores for i in inst])
        if refine:
            out['self_errors'] = np.concatenate([i.keypoint_self_errors for i in inst])
    out['bboxes'] = np.asarray(bboxes, np.float32).reshape(-1, 4)
    return out


def moved_keypoints(pred: Dict[str, np.ndarray], frac: float = 0.02) -> np.ndarray:
    """BoolArray[N, K]: keypoints that SCAI moved by more than ``frac`` of the box
    diagonal."""
    diag = np.linalg.norm(pred['bboxes'][:, 2:] - pred['bboxes'][:, :2], axis=1)
    shift = np.linalg.norm(pred['scai'] - pred['base'], axis=-1)
    return shift > frac * np.maximum(diag, 1.)[:, None]


def person_region(bboxes: np.ndarray, shape: Sequence[int], pad: float = 0.1
                  ) -> List[float]:
    """The union of the boxes (float[N, 4]) grown by ``pad``, inside the image."""
    x1, y1 = bboxes[:, :2].min(0)
    x2, y2 = bboxes[:, 2:].max(0)
    dx, dy = pad * (x2 - x1), pad * (y2 - y1)
    return [max(x1 - dx, 0), max(y1 - dy, 0), min(x2 + dx, shape[1]), min(y2 + dy, shape[0])]


def draw_pair(img_rgb: np.ndarray, pred: Dict[str, np.ndarray], skeleton: Sequence,
              out_file: Optional[str] = None, region: Optional[Sequence[float]] = None,
              title: str = '', score_thr: float = 0.2) -> np.ndarray:
    """Two panels at the same scale: base | +SCAI (moved keypoints marked, E_s shown).

    Args:
        img_rgb (uint8[H, W, 3]): The image.
        pred (dict): From :func:`predict_pair`.
        skeleton: Keypoint index pairs to join.
        out_file (str, optional): Where to write the PNG.
        region (x1, y1, x2, y2, optional): The image region to show (default: all).
        title (str): A line above the panels.
        score_thr (float): Keypoints with a lower score (``base_scores``,
            ``scai_scores``) are not drawn.

    Returns:
        uint8[h, w, 3]: The rendered figure.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    h, w = img_rgb.shape[:2]
    x1, y1, x2, y2 = region if region is not None else (0, 0, w, h)
    aspect = (y2 - y1) / max(x2 - x1, 1)
    width = 8.0
    fig, axes = plt.subplots(1, 2, figsize=(width, width / 2 * aspect + 0.6), dpi=110)
    moved = moved_keypoints(pred)
    errors = pred['self_errors']
    for ax, name in zip(axes, ('base', 'scai')):
        ax.imshow(img_rgb)
        ax.set_xlim(x1, x2)
        ax.set_ylim(y2, y1)
        ax.set_axis_off()
        colour = BASE_COLOUR if name == 'base' else SCAI_COLOUR
        scores = pred.get(name + '_scores', pred['base_scores'])
        for n, kpts in enumerate(pred[name]):
            ok = scores[n] >= score_thr
            for a, b in skeleton:
                if ok[a] and ok[b]:
                    ax.plot(kpts[[a, b], 0], kpts[[a, b], 1], '-', color=colour, lw=1.6,
                            alpha=0.85)
            ax.scatter(kpts[ok, 0], kpts[ok, 1], s=14, c=colour, edgecolors='white',
                       linewidths=0.6, zorder=3)
            if name == 'base':
                continue
            for k in np.flatnonzero(ok & moved[n]):
                bx, by = pred['base'][n, k]
                ax.annotate('', xy=kpts[k], xytext=(bx, by), zorder=4,
                            arrowprops=dict(arrowstyle='->', color=MOVED_COLOUR, lw=1.2))
                ax.scatter(*kpts[k], s=90, facecolors='none', edgecolors=MOVED_COLOUR,
                           linewidths=1.4, zorder=4)
            for k in np.flatnonzero(ok & np.isfinite(errors[n])):
                ax.text(kpts[k, 0] + 0.01 * (x2 - x1), kpts[k, 1], f'{errors[n, k]:.2f}',
                        fontsize=6.5, color='black', zorder=5,
                        bbox=dict(boxstyle='round,pad=0.15', fc='white', ec='none',
                                  alpha=0.75))
    n_moved = int((moved & (pred['base_scores'] >= score_thr)).sum())
    axes[0].set_title('base', fontsize=10)
    axes[1].set_title(f'+SCAI: {n_moved} keypoint(s) moved (red); labels: E_s', fontsize=10)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.88 if title else 0.92,
                        wspace=0.02)
    fig.canvas.draw()
    rendered = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    if out_file:
        os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
        fig.savefig(out_file)
    plt.close(fig)
    return rendered


def to_json(pred: Dict[str, np.ndarray]) -> List[dict]:
    """One dict per person (NaN E_s as null)."""
    moved = moved_keypoints(pred)

    def clean(a: np.ndarray) -> list:
        return [None if not np.isfinite(v) else round(float(v), 4) for v in a]

    return [dict(bbox=pred['bboxes'][n].tolist(),
                 keypoints_base=np.round(pred['base'][n], 2).tolist(),
                 keypoints_scai=np.round(pred['scai'][n], 2).tolist(),
                 keypoint_scores=clean(pred['scai_scores'][n]),
                 keypoint_self_errors=clean(pred['self_errors'][n]),
                 moved=moved[n].tolist()) for n in range(len(pred['bboxes']))]


def _inputs(path: str) -> List[str]:
    if osp.isdir(path):
        return sorted(osp.join(path, f) for f in os.listdir(path)
                      if f.lower().endswith(IMAGE_EXTS))
    return [path]


def _boxes(args, name: str, shape) -> np.ndarray:
    if args.bboxes_file:
        with open(args.bboxes_file) as f:
            boxes = json.load(f).get(name)
        if boxes is None:
            raise SystemExit(f'{args.bboxes_file} has no boxes for {name!r}')
        return np.asarray(boxes, np.float32).reshape(-1, 4)
    if args.bboxes:
        if len(args.bboxes) % 4:
            raise SystemExit(f'--bboxes takes x1 y1 x2 y2 per person, got {args.bboxes}')
        return np.asarray(args.bboxes, np.float32).reshape(-1, 4)
    return np.array([[0, 0, shape[1], shape[0]]], np.float32)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog='\n'.join(__doc__.splitlines()[1:]))
    p.add_argument('config', help='a SCAI config')
    p.add_argument('checkpoint', help='a SCAI checkpoint (base + refiner)')
    p.add_argument('--input', required=True, help='an image, a folder of images or a video')
    p.add_argument('--bboxes', type=float, nargs='+', help='x1 y1 x2 y2 per person')
    p.add_argument('--bboxes-file', help='JSON: {image file name: [[x1, y1, x2, y2], ...]}')
    p.add_argument('--output-root', default='vis_results')
    p.add_argument('--tta', action='store_true', help='test-time adaptation (default preset)')
    p.add_argument('--device', default='cpu')
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    import mmcv

    import mmpose_scai  # noqa: F401  (shims first)
    from mmpose.apis import init_model
    model = init_model(args.config, args.checkpoint, device=args.device)
    skeleton = model.dataset_meta.get('skeleton_links', [])
    os.makedirs(args.output_root, exist_ok=True)
    results = {}
    if args.input.lower().endswith(VIDEO_EXTS):
        import cv2
        video = mmcv.VideoReader(args.input)
        out_file = osp.join(args.output_root, osp.splitext(osp.basename(args.input))[0] +
                            '_scai.mp4')
        writer = None
        for i, frame in enumerate(video):
            pred = predict_pair(model, frame, _boxes(args, f'frame_{i}', frame.shape),
                                args.tta)
            panel = draw_pair(mmcv.bgr2rgb(frame), pred, skeleton, title=f'frame {i}')
            if writer is None:
                writer = cv2.VideoWriter(out_file, cv2.VideoWriter_fourcc(*'mp4v'),
                                         video.fps, (panel.shape[1], panel.shape[0]))
            writer.write(mmcv.rgb2bgr(panel))
            results[f'frame_{i}'] = to_json(pred)
        if writer is not None:
            writer.release()
        print(f'wrote {out_file}')
    else:
        for path in _inputs(args.input):
            name = osp.basename(path)
            img = mmcv.imread(path)
            pred = predict_pair(model, img, _boxes(args, name, img.shape), args.tta)
            out_file = osp.join(args.output_root, osp.splitext(name)[0] + '_scai.png')
            draw_pair(mmcv.bgr2rgb(img), pred, skeleton, out_file, title=name,
                      region=person_region(pred['bboxes'], img.shape))
            results[name] = to_json(pred)
            print(f'wrote {out_file}')
    with open(osp.join(args.output_root, 'predictions.json'), 'w') as f:
        json.dump(results, f, indent=1)
    print(f'wrote {osp.join(args.output_root, "predictions.json")}')


if __name__ == '__main__':
    main()
