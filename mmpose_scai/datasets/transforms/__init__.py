"""Test-time transforms; see :mod:`.shift` for the distribution-shift benchmark."""
from .shift import (CORRUPTIONS, DISTAL_JOINTS, LOW_RESOLUTION_FACTORS, OCCLUSION_LEVELS,
                    SHIFTS, ImageCorruption, SyntheticOcclusion, shift_pipeline,
                    shift_transform_cfg)

__all__ = ['CORRUPTIONS', 'DISTAL_JOINTS', 'LOW_RESOLUTION_FACTORS', 'OCCLUSION_LEVELS',
           'SHIFTS', 'ImageCorruption', 'SyntheticOcclusion', 'shift_pipeline',
           'shift_transform_cfg']
