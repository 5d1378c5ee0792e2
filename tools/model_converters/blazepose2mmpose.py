"""Convert MediaPipe's BlazePose-GHUM ``.tflite`` landmark model to an MMPose checkpoint.

The weights are read from the flatbuffer with numpy (no TensorFlow) into the plugin's
:class:`BlazePoseGHUM` backbone and a 1x1 heatmap layer (``head.final_layer``).

Needs the ``tflite`` schema package (PyPI ``tflite``). TFLite conventions handled here:
tensors are NHWC, conv weights OHWI, depthwise weights 1HWC, weights may be stored as
float16 behind a DEQUANTIZE op, and stride-2 layers are an explicit PAD + VALID conv.
The layers are matched by data flow, not by name (the names are fused TF op names).
"""
import argparse
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch
import torch.nn as nn

from mmpose_scai.models.backbones import BlazePoseGHUM
from mmpose_scai.utils.weights import save_checkpoint

# The 17 COCO keypoints among BlazePose's 33 landmarks, in COCO order.
BLAZEPOSE_COCO_INDICES = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
NUM_LANDMARKS = 39  # 33 body landmarks + 6 auxiliary ones
CONV_OPS = ('CONV_2D', 'DEPTHWISE_CONV_2D')


class TFLiteGraph:
    """The first subgraph of a ``.tflite`` model: ops, tensors and constant data.

    Args:
        path (str): The ``.tflite`` file.
    """

    def __init__(self, path: str) -> None:
        try:
            import tflite
        except ImportError as e:  # pragma: no cover
            raise ImportError('Reading .tflite files needs the `tflite` package '
                              '(pip install tflite==2.18.0).') from e
        self._tflite = tflite
        with open(path, 'rb') as f:
            self._buf = f.read()
        self.model = tflite.Model.GetRootAsModel(self._buf, 0)
        self.graph = self.model.Subgraphs(0)
        names = {v: k for k, v in vars(tflite.BuiltinOperator).items()
                 if not k.startswith('_')}
        self.ops: List[Tuple[str, List[int], List[int]]] = []
        self.producer: Dict[int, int] = {}
        for i in range(self.graph.OperatorsLength()):
            op = self.graph.Operators(i)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            # newer schemas keep small codes in the deprecated field as well
            kind = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
            ins = [int(t) for t in op.InputsAsNumpy()]
            outs = [int(t) for t in op.OutputsAsNumpy()]
            self.ops.append((kind, ins, outs))
            for t in outs:
                self.producer[t] = i

    def shape(self, tensor: int) -> Tuple[int, ...]:
        return tuple(int(s) for s in self.graph.Tensors(tensor).ShapeAsNumpy())

    def outputs(self) -> List[int]:
        return [self.graph.Outputs(i) for i in range(self.graph.OutputsLength())]

    def constant(self, tensor: int) -> np.ndarray:
        """A constant tensor as float32 (float16 weights are dequantized)."""
        op = self.producer.get(tensor)
        if op is not None:
            kind, ins, _ = self.ops[op]
            if kind != 'DEQUANTIZE':
                raise ValueError(f'Tensor {tensor} is computed by {kind}, not constant.')
            tensor = ins[0]
        t = self.graph.Tensors(tensor)
        dtypes = {self._tflite.TensorType.FLOAT32: np.float32,
                  self._tflite.TensorType.FLOAT16: np.float16,
                  self._tflite.TensorType.INT32: np.int32}
        raw = self.model.Buffers(t.Buffer()).DataAsNumpy()
        return raw.view(dtypes[t.Type()]).reshape(self.shape(tensor)).astype(np.float32)

    def options(self, op: int):
        """The builtin options table of a conv op (Conv2D or DepthwiseConv2D)."""
        kind = self.ops[op][0]
        cls = (self._tflite.Conv2DOptions
               if kind == 'CONV_2D' else self._tflite.DepthwiseConv2DOptions)
        table = self.graph.Operators(op).BuiltinOptions()
        opts = cls()
        opts.Init(table.Bytes, table.Pos)
        return opts

    def conv_ancestors(self, tensor: int) -> Set[int]:
        """Indices of the conv ops that ``tensor`` depends on."""
        seen, found, stack = set(), set(), [tensor]
        while stack:
            op = self.producer.get(stack.pop())
            if op is None or op in seen:
                continue
            seen.add(op)
            kind, ins, _ = self.ops[op]
            if kind in CONV_OPS:
                found.add(op)
            stack.extend(ins[:1] if kind in CONV_OPS else ins)
        return found

    def padding(self, op: int) -> Tuple[int, int]:
        """Symmetric (pad_h, pad_w) of a conv op, folding a preceding PAD op in."""
        _, ins, _ = self.ops[op]
        opts = self.options(op)
        kh, kw = self.shape(ins[1])[1:3]
        if opts.Padding() == self._tflite.Padding.SAME:
            if opts.StrideH() != 1 or opts.StrideW() != 1:
                raise NotImplementedError('SAME padding with stride > 1 pads '
                                          'asymmetrically; not supported.')
            return kh // 2, kw // 2
        pad = (0, 0)
        src = self.producer.get(ins[0])
        if src is not None and self.ops[src][0] == 'PAD':
            pads = self.constant_int(self.ops[src][1][1]).reshape(-1, 2)
            if (pads[:, 0] != pads[:, 1]).any() or pads[0].any() or pads[3].any():
                raise NotImplementedError(f'Asymmetric padding {pads.tolist()}.')
            pad = (int(pads[1, 0]), int(pads[2, 0]))
        return pad

    def constant_int(self, tensor: int) -> np.ndarray:
        t = self.graph.Tensors(tensor)
        return self.model.Buffers(t.Buffer()).DataAsNumpy().view(np.int32)


def _find_heatmap_conv(graph: TFLiteGraph, num_landmarks: int) -> int:
    """The conv op computing the [1, h, w, num_landmarks] heatmap output."""
    for t in graph.outputs():
        shape = graph.shape(t)
        op = graph.producer.get(t)
        if len(shape) == 4 and shape[-1] == num_landmarks and op is not None \
                and graph.ops[op][0] == 'CONV_2D':
            return op
    raise ValueError(f'No [1, h, w, {num_landmarks}] heatmap output in the model.')


def _decoder_taps(graph: TFLiteGraph, feat: int, levels: int) -> Tuple[int, List[int]]:
    """Walk the decoder back from the 1/4 feature map: ``x = up(x) + lateral`` per level.

    Returns:
        tuple: the top block's output tensor and the lateral outputs (finest first).
    """
    laterals = []
    for _ in range(levels):
        kind, (a, b), _ = graph.ops[graph.producer[feat]]
        if kind != 'ADD':
            raise ValueError(f'Expected a decoder ADD, found {kind}.')
        if graph.ops[graph.producer[b]][0] == 'RESIZE_BILINEAR':
            a, b = b, a
        up = graph.ops[graph.producer[a]]
        if up[0] != 'RESIZE_BILINEAR':
            raise ValueError(f'Expected a bilinear upsampling, found {up[0]}.')
        laterals.append(b)
        feat = up[1][0]
    return feat, laterals


def _copy_conv(graph: TFLiteGraph, op: int, layer: nn.Conv2d) -> None:
    """Copy one conv op into a PyTorch conv, checking shape, stride and padding."""
    kind, ins, _ = graph.ops[op]
    weight, bias = graph.constant(ins[1]), graph.constant(ins[2])
    if kind == 'CONV_2D':  # OHWI -> OIHW
        weight = weight.transpose(0, 3, 1, 2)
    else:  # depthwise 1HWC -> C1HW
        weight = weight.transpose(3, 0, 1, 2)
    opts = graph.options(op)
    found = (weight.shape, (opts.StrideH(), opts.StrideW()), graph.padding(op))
    expected = (tuple(layer.weight.shape), layer.stride, layer.padding)
    if found != expected:
        raise ValueError(f'tflite op {op} ({kind}) has weight/stride/padding {found}, '
                         f'the module layer {expected}.')
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
        layer.bias.copy_(torch.from_numpy(bias))


def load_blazepose_tflite(backbone: BlazePoseGHUM, path: str,
                          num_landmarks: int = NUM_LANDMARKS
                          ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fill ``backbone`` with the weights of a BlazePose landmark ``.tflite`` file.

    Args:
        backbone (BlazePoseGHUM): The module to fill (its arch must match the file).
        path (str): ``pose_landmark_<arch>.tflite``.
        num_landmarks (int): Channels of the heatmap output.

    Returns:
        tuple: the heatmap layer's weight (Tensor[39, C, 1, 1], C = 48 or 32 for
        lite) and bias (Tensor[39]), for the head.
    """
    graph = TFLiteGraph(path)
    final = _find_heatmap_conv(graph, num_landmarks)
    trunk_convs, lateral_convs = backbone.convs_in_order()
    top, laterals = _decoder_taps(graph, graph.ops[final][1][0], len(lateral_convs))
    # encoder + top block form one chain, so op order is data-flow order; each lateral
    # is a chain branching off it
    trunk_ops = graph.conv_ancestors(top)
    groups = [(sorted(trunk_ops), trunk_convs)]
    for tap, convs in zip(laterals, lateral_convs):
        groups.append((sorted(graph.conv_ancestors(tap) - trunk_ops), convs))
    for ops, convs in groups:
        if len(ops) != len(convs):
            raise ValueError(f'The tflite branch has {len(ops)} convolutions, the module '
                             f'{len(convs)}: is this the {backbone.arch!r} model?')
        for op, layer in zip(ops, convs):
            _copy_conv(graph, op, layer)
    _, ins, _ = graph.ops[final]
    weight = graph.constant(ins[1]).transpose(0, 3, 1, 2)
    return (torch.from_numpy(np.ascontiguousarray(weight)),
            torch.from_numpy(graph.constant(ins[2])))


def convert_blazepose(path: str,
                      arch: str = 'heavy',
                      indices: Optional[Sequence[int]] = BLAZEPOSE_COCO_INDICES,
                      meta: Optional[dict] = None) -> dict:
    """An MMPose checkpoint of a ``TopdownPoseEstimator`` from the ``.tflite`` file.

    Keys are ``backbone.*`` (:class:`BlazePoseGHUM`) and ``head.final_layer.*`` (a
    ``HeatmapHead`` with ``in_channels=48`` (32 for lite), no deconv/conv layers and a 1x1 final
    layer), the heatmap rows of ``indices`` (default: the 17 COCO keypoints).

    Returns:
        dict: ``{'state_dict': ..., 'meta': ...}`` for ``torch.save``.
    """
    backbone = BlazePoseGHUM(arch)
    weight, bias = load_blazepose_tflite(backbone, path)
    if indices is not None:
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        weight, bias = weight[idx], bias[idx]
    state = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    state['head.final_layer.weight'] = weight.contiguous()
    state['head.final_layer.bias'] = bias.contiguous()
    return dict(state_dict=state, meta=dict(meta or {}, arch=arch,
                                            landmark_indices=list(indices or [])))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('tflite', help='pose_landmark_<arch>.tflite')
    p.add_argument('out', help='output MMPose checkpoint (.pth)')
    p.add_argument('--arch', default='heavy', choices=['heavy', 'full', 'lite'])
    args = p.parse_args()
    save_checkpoint(convert_blazepose(args.tflite, args.arch), args.out)
    print(args.out)


if __name__ == '__main__':
    main()
