"""BlazePoseGHUM: the hand-written module, filled by the ``.tflite`` converter
(``tools/model_converters/blazepose2mmpose.py``), against MediaPipe's own tflite
interpreter. The weights are fetched by ``tools/fetch_blazepose.py`` (MediaPipe storage or
``npm pack``, sha256-checked, cached under ``$SCAI_CACHE_DIR``); nothing is skipped.
"""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmpose_scai.models.backbones import BlazePoseGHUM, SigmoidConv2d
from tests.test_tools.utils import load_tool

fetch = load_tool('fetch_blazepose.py')
conv = load_tool('model_converters/blazepose2mmpose.py')

# Max abs difference of the heatmap logits (about -100 ... +4). Measured on these crops
# against the interpreter's reference kernels: heavy <= 3.2e-4 (7.6e-4 with XNNPACK).
LOGIT_TOL = 1e-3
REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
DEMO = osp.join(REPO, 'data', 'demo')


@pytest.fixture(scope='module')
def tflite_path() -> str:
    return fetch.fetch_blazepose('heavy')


def load(arch: str):
    model = BlazePoseGHUM(arch)
    model.eval()
    path = fetch.fetch_blazepose(arch)
    weight, bias = conv.load_blazepose_tflite(model, path)
    return path, model, weight, bias


@pytest.fixture(scope='module')
def model_and_head():
    return load('heavy')[1:]


def real_crops():
    """NHWC float32 RGB [0, 1] crops of real persons (LSPET-test and COCO val), cut
    by the configs' pipeline: square, 1.5x the box's longer side, 256x256."""
    from mmengine.registry import init_default_scope

    from mmpose.datasets import CocoDataset
    init_default_scope('mmpose')
    pipeline = [
        dict(type='LoadImage'),
        dict(type='GetBBoxCenterScale', padding=1.5),
        dict(type='TopdownAffine', input_size=(256, 256))
    ]
    crops = []
    for folder, ann, picks in (('lspet', 'test.json', (0, 3, 7)),
                               ('coco_sample', 'person_keypoints.json', (0, ))):
        ds = CocoDataset(data_root=osp.join(DEMO, folder), ann_file=f'annotations/{ann}',
                         data_prefix=dict(img='images/'), test_mode=True,
                         pipeline=pipeline)
        for i in picks:
            bgr = ds[i]['img']
            crops.append(np.ascontiguousarray(bgr[..., ::-1], dtype=np.float32) / 255.)
    return np.stack(crops)


def test_blazepose_shapes_and_params():
    model = BlazePoseGHUM()
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 256, 256))
    assert isinstance(out, tuple) and len(out) == 1
    assert out[0].shape == (2, 48, 64, 64)
    # the heatmap subgraph has 10.47 M parameters, 39 x 49 of them in the heatmap layer
    n = sum(p.numel() for p in model.parameters())
    assert n + 39 * 49 == 10_465_711
    lite = BlazePoseGHUM('lite')
    lite.eval()
    with torch.no_grad():
        assert lite(torch.rand(1, 3, 256, 256))[0].shape == (1, 32, 64, 64)
    with pytest.raises(KeyError, match='Unknown BlazePose arch'):
        BlazePoseGHUM('tiny')


def test_sigmoid_conv2d_is_a_conv2d():
    layer = SigmoidConv2d(48, 17, kernel_size=1)
    x = torch.randn(1, 48, 4, 4)
    assert isinstance(layer, torch.nn.Conv2d) and layer.in_channels == 48
    torch.testing.assert_close(layer(x), torch.sigmoid(F.conv2d(x, layer.weight,
                                                                 layer.bias)))


@pytest.mark.parametrize('arch', ['heavy', 'full', 'lite'])
def test_parity_with_tflite_interpreter(arch):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    tflite_path, model, weight, bias = load(arch)
    interpreter = Interpreter(
        model_path=tflite_path, num_threads=1,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    (inp, ) = interpreter.get_input_details()
    (out, ) = [d for d in interpreter.get_output_details() if d['name'] == 'Identity_3']
    idx = list(conv.BLAZEPOSE_COCO_INDICES)
    crops = real_crops()
    assert len(crops) == 4
    for crop in crops:
        interpreter.set_tensor(inp['index'], crop[None])
        interpreter.invoke()
        ref = interpreter.get_tensor(out['index'])[0].transpose(2, 0, 1)[idx]
        with torch.no_grad():
            feat = model(torch.from_numpy(crop[None]).permute(0, 3, 1, 2))[0]
            logits = F.conv2d(feat, weight[idx], bias[idx])[0].numpy()
        assert ref.shape == logits.shape == (17, 64, 64)
        assert ref.max() > 0  # a person was seen: some landmark has a confident peak
        assert np.abs(logits - ref).max() <= LOGIT_TOL
        np.testing.assert_array_equal(
            logits.reshape(17, -1).argmax(-1), ref.reshape(17, -1).argmax(-1))


def test_convert_to_mmpose_checkpoint(tflite_path, model_and_head):
    ckpt = conv.convert_blazepose(tflite_path, meta=dict(source='test'))
    state = ckpt['state_dict']
    assert state['head.final_layer.weight'].shape == (17, 48, 1, 1)
    assert all(k.startswith(('backbone.', 'head.final_layer.')) for k in state)
    model, weight, bias = model_and_head
    torch.testing.assert_close(state['head.final_layer.bias'],
                               bias[list(conv.BLAZEPOSE_COCO_INDICES)])
    for k, v in model.state_dict().items():
        assert torch.equal(state['backbone.' + k], v)
    assert ckpt['meta']['landmark_indices'] == list(conv.BLAZEPOSE_COCO_INDICES)


def test_tflite_layout_mismatch_is_an_error(tflite_path):
    model = BlazePoseGHUM()
    model.stages[0][1].layers[1][0].padding = (0, 0)  # a depthwise 3x3 without padding
    with pytest.raises(ValueError, match='weight/stride/padding'):
        conv.load_blazepose_tflite(model, tflite_path)
    with pytest.raises(ValueError, match="is this the 'heavy' model"):
        conv.load_blazepose_tflite(BlazePoseGHUM('heavy'), fetch.fetch_blazepose('lite'))
