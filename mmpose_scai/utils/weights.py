"""Checkpoints: the converted BlazePose-GHUM base in the cache, and SCAI refiner files.

``tools/fetch_blazepose.py`` fetches MediaPipe's ``pose_landmark_<arch>.tflite`` (checked
by sha256), converts it and writes the MMPose checkpoint that
:func:`blazepose_checkpoint_path` names, under ``$SCAI_CACHE_DIR`` (default
``~/.cache/mmpose_scai``), outside git.
"""
import hashlib
import io
import os
import os.path as osp
from typing import Dict, Optional

CACHE_ENV = 'SCAI_CACHE_DIR'
CONVERTER_VERSION = 1  # part of the converted checkpoint's name: bump to re-convert
# sha256 of MediaPipe's pose_landmark_<arch>.tflite (npm @mediapipe/pose@0.5.1675469404)
BLAZEPOSE_SHA256: Dict[str, str] = {
    'heavy': '59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe',
    'full': 'e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f',
    'lite': 'f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61',
}


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


def blazepose_checkpoint_path(arch: str = 'heavy', cache: Optional[str] = None) -> str:
    """Where ``tools/fetch_blazepose.py`` writes the converted checkpoint (no I/O: for
    ``load_from`` in configs)."""
    return osp.join(cache or cache_dir(create=False),
                    f'blazepose-ghum-{arch}_coco-256x256-{BLAZEPOSE_SHA256[arch][:8]}'
                    f'-v{CONVERTER_VERSION}.pth')


def blazepose_checkpoint(arch: str = 'heavy', cache: Optional[str] = None) -> str:
    """Path of the converted BlazePose-GHUM checkpoint (17 COCO heatmaps).

    Raises:
        FileNotFoundError: If it was not written yet, naming the command that does.
    """
    path = blazepose_checkpoint_path(arch, cache)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'No converted BlazePose-GHUM {arch} checkpoint at {path}. Run `python '
            f'tools/fetch_blazepose.py --arch {arch}` from the mmpose-scai repository '
            '(fetches MediaPipe\'s model, checks its sha256 and converts it).')
    return path


# ------------------------------------------------------- SCAI refiner checkpoints
#: state-dict keys a SCAI checkpoint adds to its base: the refinement networks and the
#: chain mask; everything else is the (frozen) base
REFINER_KEYS = ('head.refiner.', 'head.chain_labelled')


def save_checkpoint(obj, path: str) -> None:
    """``torch.save`` to ``path`` through a temporary file (concurrent writers are safe)."""
    import torch

    buffer = io.BytesIO()  # not torch.save(path): its archive name would vary the sha256
    torch.save(obj, buffer)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    part = f'{path}.{os.getpid()}.part'
    with open(part, 'wb') as f:
        f.write(buffer.getvalue())
    os.replace(part, path)


def scai_checkpoint(base: str, refiner: str, out: Optional[str] = None) -> str:
    """A loadable SCAI checkpoint: the base checkpoint's weights plus a refiner file
    written by ``tools/extract_refiner.py`` (for ``mmpose.apis.init_model``).

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
    save_checkpoint(dict(state_dict=state, meta=meta), out)
    return out
