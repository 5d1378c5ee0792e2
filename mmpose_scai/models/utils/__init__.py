from .heatmaps import heatmap_peaks, render_gaussians, virtual_heatmaps

__all__ = ['heatmap_peaks', 'render_gaussians', 'virtual_heatmaps']
