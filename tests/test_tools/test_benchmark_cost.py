"""``tools/benchmark_cost.py``: configs without downloads, forked measurements, table."""
import json
import sys

import pytest

from tests.test_tools.utils import load_tool

bc = load_tool('benchmark_cost.py')
SMALL = bc.CASES[0][1]


def test_cases_cover_the_issue():
    batches = {label.split()[0]: b for label, _, b in bc.CASES}
    assert batches == {'ResNet-18': (1, 8, 32), 'HRNet-W32': (1, 8, 32),
                       'ResNet-152': (1, ), 'HRNet-W48': (1, )}


@pytest.mark.parametrize('config', [c for _, c, _ in bc.CASES])
def test_build_cfg_loads_nothing(config):
    cfg = bc.build_cfg(config)
    assert cfg.load_from is None
    assert cfg.model.backbone.get('init_cfg') is None
    assert cfg.model.head.type == 'SCAIHead'
    lite = bc.build_cfg(config, lite=True)
    assert lite.model.head.refiner.type == 'SCAILiteRefiner'
    assert lite.model.head.base_head == cfg.model.head.base_head
    assert bc.input_shape(cfg, 8)[0] == 8


def test_in_child_returns_and_reraises():
    assert bc.in_child(pow, 2, 5) == 32
    with pytest.raises(RuntimeError, match='ZeroDivisionError'):
        bc.in_child(divmod, 1, 0)


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='fork and /proc')
def test_quick_run_end_to_end(tmp_path):
    """The small model at batch 1, measured for real by the script in a fresh process
    (its children are forked from a parent that ran no tensor op: OpenMP is not
    fork-safe once used), then the table and the JSON (no timing thresholds)."""
    import subprocess

    from benchmarks.data_root import repo_root
    out = tmp_path / 'cost'
    proc = subprocess.run(
        [sys.executable, 'tools/benchmark_cost.py', '--quick', '--repeat', '1',
         '--out', str(out)], cwd=repo_root(), capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / 'cost.json').read_text())
    (case, ) = report['cases']
    assert case['batch'] == 1 and case['config'] == SMALL
    assert case['scai']['ratio_params'] < 0.05 and case['lite']['ratio_params'] < 0.05
    assert case['scai']['ratio_flops'] > 0 and case['lite']['ratio_flops'] >= 0
    assert 'tta_ratio_seconds' in case['scai'] and 'tta_ratio_seconds' not in case['lite']
    mem = case['memory']
    assert set(mem) == set(bc.MEMORY_VARIANTS)
    # the whole pipeline never needs much less than the base forward it contains
    for v in ('scai', 'lite', 'scai_tta'):
        assert mem[v]['peak_mib'] > 0.8 * mem['base']['peak_mib']
    row = report['rows'][0]
    assert row['scai_mem'] == pytest.approx(mem['scai']['peak_mib'] / mem['base']['peak_mib'])
    text = (tmp_path / 'cost.md').read_text()
    assert text == bc.markdown(report)
    assert '| ResNet-18 128×96 (LSPET) | 1 |' in text and 'preset default' in text
    assert repo_root() not in text  # no machine paths
