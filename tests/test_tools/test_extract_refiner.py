"""Shipping a SCAI refiner without its base: ``tools/extract_refiner.py`` and
``mmpose_scai.utils.scai_checkpoint``."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from mmpose_scai.utils import REFINER_KEYS, scai_checkpoint
from tests.test_tools.utils import load_tool

extract_refiner = load_tool('extract_refiner.py').extract_refiner

CONFIG = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'body_2d_keypoint',
                  'scai', 'lspet', 'td-hm_blazepose-ghum-heavy_scai-1xb32-6e_lspet-256x256.py')


def _model(seed: int):
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.arch = 'lite'
    cfg.model.head.base_head.in_channels = 32
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    for p in model.parameters():  # make every weight distinguishable from a fresh one
        p.data.normal_()
    return model


def test_refiner_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv('SCAI_CACHE_DIR', str(tmp_path / 'cache'))
    trained = _model(0)
    full = tmp_path / 'scai_full.pth'
    torch.save(dict(state_dict=trained.state_dict(), meta=dict(epoch=6)), full)
    # the base as an ordinary MMPose checkpoint (head.X keys)
    base_state = {('head.' + k[len('head.base_head.'):] if k.startswith('head.base_head.')
                   else k): v for k, v in trained.state_dict().items()
                  if not k.startswith(REFINER_KEYS)}
    base = tmp_path / 'base.pth'
    torch.save(dict(state_dict=base_state, meta={}), base)

    refiner = extract_refiner(str(full), str(tmp_path / 'refiner.pth'),
                              meta=dict(note='test'))
    ref = torch.load(refiner, weights_only=False)
    assert ref['state_dict'] and all(k.startswith(REFINER_KEYS) for k in ref['state_dict'])
    assert 'head.chain_labelled' in ref['state_dict']
    assert ref['meta'] == dict(epoch=6, note='test')
    assert osp.getsize(refiner) < osp.getsize(full) / 5

    ckpt = scai_checkpoint(str(base), refiner, str(tmp_path / 'combined.pth'))
    fresh = _model(1)
    load_checkpoint(fresh, ckpt, map_location='cpu', logger='silent')
    assert fresh.base_keys_loaded[0] == fresh.base_keys_loaded[1] > 0
    want = trained.state_dict()
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, want[k]), k
    # default output: in the cache, named after both inputs, reused
    default = scai_checkpoint(str(base), refiner)
    assert default.startswith(str(tmp_path / 'cache'))
    assert scai_checkpoint(str(base), refiner) == default


def test_refiner_files_are_checked(tmp_path):
    model = _model(0)
    base_only = tmp_path / 'base.pth'
    torch.save(dict(state_dict={k: v for k, v in model.state_dict().items()
                                if not k.startswith(REFINER_KEYS)}), base_only)
    with pytest.raises(KeyError, match='no SCAI refiner'):
        extract_refiner(str(base_only), str(tmp_path / 'r.pth'))
    full = tmp_path / 'full.pth'
    torch.save(dict(state_dict=model.state_dict()), full)
    with pytest.raises(KeyError, match='not a refiner-only'):
        scai_checkpoint(str(base_only), str(full), str(tmp_path / 'c.pth'))
