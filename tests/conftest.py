"""Shared fixtures. Importing ``mmpose_scai`` here applies the compat shims first."""
import json
import os
import subprocess
import sys
from typing import Dict, Optional

import pytest

from benchmarks.data_root import (DATA_ROOT_ENV, DataRootError, is_ci, is_demo_root,
                                   resolve_data_root)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:  # the configs read $SCAI_DATA_ROOT; the data_root fixture checks it again
    os.environ[DATA_ROOT_ENV] = resolve_data_root(allow_demo=not is_ci())
except DataRootError:
    pass
_skipped = []


@pytest.fixture(scope='session')
def data_root() -> str:
    """The data root. In CI (``CI=true``) the shared data must be there: a fallback to
    the embedded demo subset, or no data at all, fails instead of skipping."""
    try:
        root = resolve_data_root(allow_demo=not is_ci())
    except DataRootError as e:
        if is_ci():
            pytest.fail(f'CI=true and no shared data: {e}', pytrace=False)
        raise
    os.environ[DATA_ROOT_ENV] = root  # the configs read it (and so do subprocesses)
    return root


@pytest.fixture(scope='session')
def uses_demo_data(data_root: str) -> bool:
    return is_demo_root(data_root)


# Imports ``mmpose_scai.compat`` as ``compat`` without running the package ``__init__``
# (which applies every shim and imports mmpose.models): the shims stay unapplied until
# the code calls ``compat.apply_compat()``.
COMPAT_ONLY = f'''
import sys, types
_pkg = types.ModuleType('mmpose_scai')
_pkg.__path__ = [{os.path.join(REPO_ROOT, 'mmpose_scai')!r}]
sys.modules['mmpose_scai'] = _pkg
import mmpose_scai.compat as compat
'''


def run_python(code: str, env: Optional[Dict[str, str]] = None,
               timeout: float = 120) -> Dict:
    """Run :data:`COMPAT_ONLY` + ``code`` in a fresh interpreter (import-time state
    matters for the shims).

    The code must print one JSON object as its last stdout line; it is returned.
    """
    code = COMPAT_ONLY + code
    full_env = {k: v for k, v in os.environ.items() if k != 'SCAI_COMPAT_DISABLE'}
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, 'wasxfail'):
        _skipped.append(report.nodeid)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    # A skipped test is not a passed one: in CI any skip fails the run.
    if is_ci() and _skipped and session.exitstatus == 0:
        print(f'\nCI=true: {len(_skipped)} skipped test(s) count as failures: {_skipped}')
        session.exitstatus = 1


@pytest.fixture(scope='session')
def run_py():
    """:func:`run_python` as a fixture."""
    return run_python


@pytest.fixture(scope='session')
def blazepose_tool():
    """``tools/fetch_blazepose.py`` as a module (fetch, sha256 check, conversion)."""
    from tests.test_tools.utils import load_tool
    return load_tool('fetch_blazepose.py')


@pytest.fixture(scope='session')
def blazepose_heavy(blazepose_tool) -> str:
    """The converted BlazePose-GHUM heavy checkpoint, written by the tool if missing."""
    return blazepose_tool.blazepose_checkpoint('heavy')
