from .scai_losses import ChainHeatmapLoss, CorrectionLoss, heatmap_distance, masked_mean

__all__ = ['ChainHeatmapLoss', 'CorrectionLoss', 'heatmap_distance', 'masked_mean']
