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
def test_one_case_end_to_end(tmp_path):
    """The small model at batch 1: real measurements in forked children, then the
    table and the JSON (no timing thresholds)."""
    case = bc.in_child(bc.measure_case, SMALL, 1, 1, dict(), False)
    case['memory'] = {v: bc.in_child(bc.measure_memory, SMALL, 1, v, dict())
                      for v in bc.MEMORY_VARIANTS}
    case.update(model='small', config=SMALL, batch=1)
    assert case['scai']['ratio_params'] < 0.05 and case['lite']['ratio_params'] < 0.05
    assert 'tta_ratio_seconds' in case['scai'] and 'tta_ratio_seconds' not in case['lite']
    mem = case['memory']
    # the whole pipeline never needs less than the base forward it contains
    for v in ('scai', 'lite', 'scai_tta'):
        assert mem[v]['peak_mib'] > 0.8 * mem['base']['peak_mib']
    row = bc.case_row(case)
    assert row['scai_mem'] == pytest.approx(mem['scai']['peak_mib'] / mem['base']['peak_mib'])
    report = dict(command='x', date='d', wall_seconds=1., load_start=0., load_end=0.,
                  machine=bc.machine(), repeat=1, tta=dict(), memory_method='m',
                  rows=[row], cases=[case])
    text = bc.markdown(report)
    assert '| small | 1 |' in text and 'preset default' in text
    json.dumps(report)  # serializable
