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


@pytest.mark.parametrize('content', [
    b'', b'\x80\x02.', os.urandom(64), b'hello world\n', b'<html>404 Not Found</html>'
], ids=['empty', 'pop-from-empty-list', 'random', 'text', 'html'])
def test_garbage_file_is_a_clear_error(tmp_path, content):
    """Not a checkpoint: the error names the file and what to check, whatever torch's
    weights-only unpickler tripped on (IndexError, KeyError, EOFError, ...)."""
    from mmengine.runner import load_checkpoint
    path = tmp_path / 'model.pth'
    path.write_bytes(content)
    with pytest.raises(checkpoint.CheckpointReadError,
                       match=rf'model\.pth \({len(content)} bytes\) is not a checkpoint '
                       r'torch\.load can read \(\w+') as e:
        load_checkpoint(nn.Linear(2, 2), str(path), map_location='cpu')
    assert 'download the file again' in str(e.value)


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    from mmengine.runner import load_checkpoint
    path = tmp_path / 'cut.pth'
    torch.save({'state_dict': nn.Linear(2, 2).state_dict()}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(checkpoint.CheckpointReadError, match='cut.pth'):
        load_checkpoint(nn.Linear(2, 2), str(path), map_location='cpu')


def test_refused_global_keeps_torchs_message(tmp_path):
    from mmengine.runner.checkpoint import CheckpointLoader
    path = tmp_path / 'unsafe.pth'
    torch.save({'x': _Exploit(str(tmp_path / 'pwned'))}, path)
    with pytest.raises(pickle.UnpicklingError, match='Weights only load failed'):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert not (tmp_path / 'pwned').exists()
