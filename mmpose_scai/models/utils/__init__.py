from .heatmaps import (flip_average, forward_with_features, heatmap_peaks,
                       render_gaussians, virtual_heatmaps)

__all__ = [
    'flip_average', 'forward_with_features', 'heatmap_peaks', 'render_gaussians',
    'virtual_heatmaps'
]
