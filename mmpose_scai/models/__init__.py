from .backbones import BlazePoseGHUM, SigmoidConv2d
from .lite import ChainMLP, SCAILiteRefiner
from .losses import ChainHeatmapLoss, CorrectionLoss
from .networks import ChainConvNet
from .refiner import ChainInputs, ChainState, SCAIRefiner
from .rotation_tta import RotationTTAPoseEstimator
from .scai_estimator import SCAIOptimWrapperConstructor, SCAIPoseEstimator
from .scai_head import SCAIHead

__all__ = [
    'ChainConvNet', 'ChainHeatmapLoss', 'CorrectionLoss', 'ChainInputs', 'ChainState',
    'SCAIRefiner', 'SCAIHead', 'SCAIPoseEstimator', 'SCAIOptimWrapperConstructor',
    'SCAILiteRefiner', 'ChainMLP', 'BlazePoseGHUM', 'SigmoidConv2d',
    'RotationTTAPoseEstimator'
]
