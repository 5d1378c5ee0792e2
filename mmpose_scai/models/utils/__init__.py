from .heatmaps import forward_with_features, heatmap_peaks, render_gaussians, virtual_heatmaps

__all__ = ['forward_with_features', 'heatmap_peaks', 'render_gaussians', 'virtual_heatmaps']
