"""Fetch and cache third-party weights: MediaPipe's BlazePose-GHUM landmark models.

Files are cached outside git, under ``$SCAI_CACHE_DIR`` (default
``~/.cache/mmpose_scai``), and checked by sha256. Sources, in order:

1. MediaPipe's own model storage (the URL MediaPipe's legacy Python solution uses);
2. the npm package ``@mediapipe/pose`` (Apache-2.0), through the ``npm`` client
   (``npm pack``), which ships the same files under ``package/``.
"""
import hashlib
import io
import os
import os.path as osp
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from typing import Dict, List, Optional

CACHE_ENV = 'SCAI_CACHE_DIR'
CONVERTER_VERSION = 1  # part of the converted checkpoint's name: bump to re-convert
MEDIAPIPE_STORAGE = 'https://storage.googleapis.com/mediapipe-assets/'
NPM_PACKAGE = '@mediapipe/pose@0.5.1675469404'
# sha256 of the files in NPM_PACKAGE; a copy from either source is kept only if it matches
BLAZEPOSE_SHA256: Dict[str, str] = {
    'heavy': '59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe',
    'full': 'e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f',
    'lite': 'f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61',
}


class WeightsError(RuntimeError):
    """No source gave the expected file."""


def cache_dir(create: bool = True) -> str:
    """``$SCAI_CACHE_DIR`` or ``~/.cache/mmpose_scai`` (created unless ``create=False``)."""
    path = os.environ.get(CACHE_ENV) or osp.join('~', '.cache', 'mmpose_scai')
    path = osp.abspath(osp.expanduser(path))
    if create:
        os.makedirs(path, exist_ok=True)
    return path


def sha256sum(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


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


def blazepose_checkpoint_path(arch: str = 'heavy', cache: Optional[str] = None) -> str:
    """Where :func:`blazepose_checkpoint` puts the converted checkpoint (no I/O: for
    ``load_from`` in configs; ``tools/fetch_blazepose.py`` creates the file)."""
    return osp.join(cache or cache_dir(create=False),
                    f'blazepose-ghum-{arch}_coco-256x256-{BLAZEPOSE_SHA256[arch][:8]}'
                    f'-v{CONVERTER_VERSION}.pth')


def blazepose_checkpoint(arch: str = 'heavy', cache: Optional[str] = None) -> str:
    """Path of the MMPose checkpoint converted from ``pose_landmark_<arch>.tflite``
    (17 COCO heatmaps), fetched, converted and cached on first use."""
    from mmpose_scai.models.backbones.blazepose_tflite import convert_blazepose
    path = blazepose_checkpoint_path(arch, cache)
    if osp.isfile(path):
        return path
    tflite_path = fetch_blazepose(arch, cache)
    ckpt = convert_blazepose(tflite_path, arch, meta=dict(
        source=f'{NPM_PACKAGE}: package/pose_landmark_{arch}.tflite',
        source_sha256=BLAZEPOSE_SHA256[arch], license='Apache-2.0'))
    _save_atomic(ckpt, path)
    return path


# ------------------------------------------------------- SCAI refiner checkpoints
#: state-dict keys a SCAI checkpoint adds to its base: the refinement networks and the
#: chain mask; everything else is the (frozen) base
REFINER_KEYS = ('head.refiner.', 'head.chain_labelled')


def _save_atomic(obj, path: str) -> None:
    """``torch.save`` to ``path`` through a temporary file (concurrent writers are safe)."""
    import torch

    buffer = io.BytesIO()  # not torch.save(path): its archive name would vary the sha256
    torch.save(obj, buffer)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    part = f'{path}.{os.getpid()}.part'
    with open(part, 'wb') as f:
        f.write(buffer.getvalue())
    os.replace(part, path)


def extract_refiner(checkpoint: str, out: str, meta: Optional[dict] = None) -> str:
    """Write only the SCAI refiner of a trained SCAI checkpoint (``head.refiner.*`` and
    ``head.chain_labelled``) to ``out``: a small file to ship without the base.

    Args:
        checkpoint (str): A checkpoint of a ``SCAIPoseEstimator`` (MMEngine format).
        out (str): Output path.
        meta (dict, optional): Merged into the output's ``meta`` (provenance).

    Returns:
        str: ``out``.
    """
    import torch

    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=False)
    state = ckpt.get('state_dict', ckpt)
    refiner = {k: v for k, v in state.items() if k.startswith(REFINER_KEYS)}
    if not any(k.startswith('head.refiner.') for k in refiner):
        raise KeyError(f'{checkpoint} has no SCAI refiner weights (head.refiner.*)')
    src_meta = ckpt.get('meta', {}) if isinstance(ckpt.get('meta'), dict) else {}
    info = {k: src_meta[k] for k in ('epoch', 'iter', 'dataset_meta') if k in src_meta}
    info.update(meta or {})
    _save_atomic(dict(state_dict=refiner, meta=info), out)
    return out


def scai_checkpoint(base: str, refiner: str, out: Optional[str] = None) -> str:
    """A loadable SCAI checkpoint: the base checkpoint's weights plus a refiner file
    written by :func:`extract_refiner` (for ``mmpose.apis.init_model``).

    Example:
        >>> ckpt = scai_checkpoint(blazepose_checkpoint('heavy'),
        ...                        'checkpoints/scai_blazepose-ghum-heavy_lspet-256x256.pth')
        >>> model = init_model(scai_config, ckpt, device='cpu')

    Args:
        base (str): The base model's MMPose checkpoint (its ``head.X`` keys become the
            SCAI head's ``head.base_head.X`` on loading).
        refiner (str): Refiner-only file.
        out (str, optional): Output path; default in :func:`cache_dir`, named after both
            inputs' sha256, so it is written once and reused.

    Returns:
        str: The path of the combined checkpoint.
    """
    import torch

    if out is None:
        out = osp.join(cache_dir(), f'scai_{sha256sum(refiner)[:8]}_on_'
                       f'{sha256sum(base)[:8]}.pth')
        if osp.isfile(out):
            return out
    ref = torch.load(refiner, map_location='cpu', weights_only=False)
    ref_state = ref.get('state_dict', ref)
    extra = [k for k in ref_state if not k.startswith(REFINER_KEYS)]
    if extra or not ref_state:
        raise KeyError(f'{refiner} is not a refiner-only file (keys outside '
                       f'{REFINER_KEYS}: {extra[:5]})')
    base_ckpt = torch.load(base, map_location='cpu', weights_only=False)
    state = dict(base_ckpt.get('state_dict', base_ckpt))
    state = {k: v for k, v in state.items() if not k.startswith(REFINER_KEYS)}
    state.update(ref_state)
    meta = dict(base=dict(path=osp.basename(base), meta=base_ckpt.get('meta', {})),
                refiner=dict(path=osp.basename(refiner), meta=ref.get('meta', {})))
    _save_atomic(dict(state_dict=state, meta=meta), out)
    return out
