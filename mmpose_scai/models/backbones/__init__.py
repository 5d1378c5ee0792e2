from .blazepose import BlazePoseGHUM, SigmoidConv2d
from .blazepose_tflite import (BLAZEPOSE_COCO_INDICES, convert_blazepose,
                               load_blazepose_tflite)

__all__ = [
    'BlazePoseGHUM', 'SigmoidConv2d', 'BLAZEPOSE_COCO_INDICES', 'convert_blazepose',
    'load_blazepose_tflite'
]
