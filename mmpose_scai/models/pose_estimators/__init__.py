from .rotation_tta import RotationTTAPoseEstimator
from .scai_estimator import SCAIPoseEstimator

__all__ = ['RotationTTAPoseEstimator', 'SCAIPoseEstimator']
