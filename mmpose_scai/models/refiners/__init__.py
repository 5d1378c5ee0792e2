from .heatmap_refiner import SCAIRefiner
from .lite_refiner import SCAILiteRefiner

__all__ = ['SCAIRefiner', 'SCAILiteRefiner']
