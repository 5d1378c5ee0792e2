"""The real-data benchmark (issue 11): base -> SCAI -> rows -> report.

``tools/benchmark.py`` is the command; :mod:`.pipeline` runs the steps, :mod:`.cache`
runs the frozen base once per split, :mod:`.methods` evaluates SCAI variants on the
cached heatmaps, :mod:`.metrics` / :mod:`.coco_eval` / :mod:`.analysis` score them and
:mod:`.report` prints the tables.
"""
import mmpose_scai  # noqa: F401,E402  (compat shims before mmpose.models)
from .data_root import export_data_root

export_data_root()  # the configs read $SCAI_DATA_ROOT

from .pipeline import Pipeline, Settings  # noqa: E402

__all__ = ['Pipeline', 'Settings']
