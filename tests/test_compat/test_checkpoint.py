"""B8: MMEngine checkpoints load under ``weights_only=True``; unsafe pickles do not."""
import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn

from mmpose_scai.compat import DISABLE_ENV, checkpoint

MMENGINE_LIKE = '''
import numpy as np, torch
from mmengine.logging import HistoryBuffer
buf = HistoryBuffer(); buf.update(1.0)
ckpt = dict(meta=dict(dataset_meta=dict(sigmas=np.ones(17, dtype=np.float32)),
                      epoch=np.int64(1)),
            message_hub=dict(log_scalars={'train/loss': buf}),
            state_dict={'w': torch.zeros(2)})
'''


class _Exploit:
    """Pickles to a call of ``os.system``: what ``weights_only`` must refuse."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def test_active():
    assert checkpoint.is_applied()
    allowed = torch.serialization.get_safe_globals()
    assert np.ndarray in allowed and os.system not in allowed


def test_mmengine_checkpoint_loads(tmp_path):
    scope = {}
    exec(MMENGINE_LIKE, scope)
    path = tmp_path / 'ckpt.pth'
    torch.save(scope['ckpt'], path)
    loaded = torch.load(path)  # default weights_only=True on torch >= 2.6
    assert loaded['meta']['dataset_meta']['sigmas'].dtype == np.float32
    assert loaded['message_hub']['log_scalars']['train/loss'].current() == 1.0

    from mmengine.runner import load_checkpoint
    model = nn.Module()
    model.w = nn.Parameter(torch.ones(2))
    load_checkpoint(model, str(path))
    assert torch.equal(model.w.data, torch.zeros(2))


def test_unsafe_pickle_still_rejected(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': _Exploit(str(marker))}, path)
    with pytest.raises(pickle.UnpicklingError, match='system'):
        torch.load(path)
    from mmengine.runner import CheckpointLoader
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()


def test_disabled_by_env(run_py):
    code = MMENGINE_LIKE + '''
import io, json, pickle
compat.apply_compat()
f = io.BytesIO(); torch.save(ckpt, f); f.seek(0)
try:
    torch.load(f); res = 'ok'
except pickle.UnpicklingError as e:
    res = 'UnpicklingError'
print(json.dumps(res))
'''
    assert run_py(code, env={DISABLE_ENV: 'checkpoint'}) == 'UnpicklingError'


def test_inert_without_allow_list(monkeypatch):
    # torch < 2.4 has no add_safe_globals (and loads with weights_only=False).
    monkeypatch.setattr(checkpoint, '_applied', False)
    monkeypatch.delattr(torch.serialization, 'add_safe_globals')
    assert not checkpoint.needed()
    assert checkpoint.apply() is False and not checkpoint.is_applied()
