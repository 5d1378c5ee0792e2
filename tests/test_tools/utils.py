"""Import a script under ``tools/`` as a module."""
import importlib.util
import os.path as osp

from benchmarks.data_root import repo_root


def load_tool(relpath: str):
    """The module of ``tools/<relpath>`` (e.g. ``'benchmark_cost.py'``)."""
    path = osp.join(repo_root(), 'tools', relpath)
    name = 'tool_' + osp.splitext(relpath)[0].replace('/', '_')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
