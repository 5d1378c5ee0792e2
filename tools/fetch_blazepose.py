"""Fetch MediaPipe's BlazePose-GHUM landmark model and convert it to an MMPose checkpoint.

The ``.tflite`` file comes from MediaPipe's model storage or, failing that, the npm
package ``@mediapipe/pose`` (via ``npm pack``); it is checked by sha256 and cached under
``$SCAI_CACHE_DIR`` (default ``~/.cache/mmpose_scai``) next to the converted checkpoint
(``backbone.*`` + ``head.final_layer.*``, the 17 COCO heatmaps). Prints the checkpoint's
path and sha256. See ``configs/body_2d_keypoint/topdown_heatmap/blazepose/README.md``.

Example:
    python tools/fetch_blazepose.py
    CKPT=$(python tools/fetch_blazepose.py --quiet)
"""
import argparse

import mmpose_scai  # noqa: F401  (compat shims before anything imports mmpose.models)
from mmpose_scai.utils.weights import blazepose_checkpoint, fetch_blazepose, sha256sum


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', default='heavy', choices=['heavy', 'full', 'lite'])
    parser.add_argument('--cache', default=None, help='default: $SCAI_CACHE_DIR')
    parser.add_argument('--quiet', action='store_true', help='print the path only')
    args = parser.parse_args()
    tflite_path = fetch_blazepose(args.arch, args.cache)
    ckpt = blazepose_checkpoint(args.arch, args.cache)
    if args.quiet:
        print(ckpt)
        return
    print(f'tflite:     {tflite_path}\n            sha256 {sha256sum(tflite_path)}')
    print(f'checkpoint: {ckpt}\n            sha256 {sha256sum(ckpt)}')


if __name__ == '__main__':
    main()
