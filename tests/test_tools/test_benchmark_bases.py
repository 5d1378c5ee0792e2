"""``tools/benchmark_bases.py``: the table of SCAI against the strength of the base."""
import json

from tests.test_tools.utils import load_tool


def _row(name, ap):
    return dict(variant=dict(name=name, flip=False, refine=name != 'base', rounds=3,
                             tta=None),
                AP=ap, AP50=0.5, AP75=0.25, AR=0.7, pck=0.6, distal_err=0.9)


def test_bases_table_lists_unfinished_bases(tmp_path):
    bt = load_tool('benchmark_bases.py')
    rows = [_row('base', 0.1), _row('base+flip', 0.12), _row('+SCAI', 0.15)]
    rows[1]['distal_err'], rows[2]['distal_err'] = 1.0, 0.6
    rows[2]['dAP_vs_base_flip'] = dict(diff=0.03, lo=0.01, hi=0.05)
    (tmp_path / 'a.json').write_text(json.dumps(dict(rows=dict(test=rows))))
    text = bt.main([f'A={tmp_path / "a.json"}', f'B={tmp_path / "missing.json"}',
                    '--out', str(tmp_path / 'bases.md')])
    assert (tmp_path / 'bases.md').read_text() == text + '\n'
    lines = text.splitlines()
    assert lines[2].startswith('| A | 10.0 | 12.0 | +SCAI: 15.0 | +3.0 [+1.0, +5.0]')
    assert '(-40 %)' in lines[2]
    assert 'not finished this session' in lines[3]
