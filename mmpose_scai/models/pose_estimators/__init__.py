from .scai_estimator import SCAIPoseEstimator

__all__ = ['SCAIPoseEstimator']
