"""B7: ``mmcv.ops`` placeholder for mmcv-lite."""
import pytest

from mmpose_scai.compat import DISABLE_ENV, mmcv_ops_stub


def test_active_placeholder():
    import mmcv
    import mmcv.ops
    from mmcv.ops import MultiScaleDeformableAttention
    assert mmcv_ops_stub.is_applied() and mmcv.ops.__scai_compat__
    assert MultiScaleDeformableAttention is mmcv_ops_stub.MultiScaleDeformableAttention
    with pytest.raises(RuntimeError, match='full mmcv'):
        MultiScaleDeformableAttention(embed_dims=32)


def test_other_ops_still_missing():
    # Guarded imports in mmpose must keep seeing "no full mmcv".
    with pytest.raises(ImportError):
        from mmcv.ops import DeformConv2d  # noqa: F401
    from mmpose.apis.inferencers import base_mmpose_inferencer
    assert base_mmpose_inferencer.has_mmdet is False  # its guard catches the ImportError


def test_edpose_fails_clearly_at_construction():
    from mmpose.models.heads.transformer_heads.transformers import \
        deformable_detr_layers as layers
    with pytest.raises(RuntimeError, match='MultiScaleDeformableAttention'):
        layers.DeformableDetrTransformerEncoderLayer(
            self_attn_cfg=dict(embed_dims=32, num_levels=1))


def test_disabled_by_env(run_py):
    code = '''
import json
compat.apply_compat()
try:
    import mmpose.models; res = 'ok'
except ModuleNotFoundError as e:
    res = e.name
print(json.dumps(res))
'''
    assert run_py(code, env={DISABLE_ENV: 'mmcv_ops'}) == 'mmcv._ext'


def test_inert_when_compiled_ops_exist(run_py):
    # Simulate full mmcv: ``mmcv._ext`` is importable.
    code = '''
import importlib.machinery, json, sys, types
ext = types.ModuleType('mmcv._ext')
ext.__spec__ = importlib.machinery.ModuleSpec('mmcv._ext', None)
sys.modules['mmcv._ext'] = ext
print(json.dumps(dict(report=compat.apply_compat()['mmcv_ops'],
                      stub='mmcv.ops' in sys.modules)))
'''
    assert run_py(code) == {'report': False, 'stub': False}
