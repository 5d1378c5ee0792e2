"""``tools/make_metafile.py`` fills the LSPET metafile from a benchmark report."""
import yaml

from tests.test_tools.utils import load_tool

mm = load_tool('make_metafile.py')


def _row(name, ap):
    return dict(variant=dict(name=name, flip=False, refine=name != 'base', rounds=3,
                             tta=None),
                AP=ap, AP50=0.5, AP75=0.25, AR=0.7, pck=0.6, distal_err=0.9)


def test_results_come_from_the_report(tmp_path):
    report = dict(finished='2030-01-01 00:00 UTC',
                  rows=dict(test=[_row('base', 0.1), _row('+SCAI', 0.2)],
                            coco=[_row('base', 0.01)]))
    meta = yaml.safe_load(mm.dump(mm.lspet_metafile(report)))
    models = {m['Name']: m for m in meta['Models']}
    base = models['td-hm_res18_1xb32-6e_lspet-128x96']
    scai = models['td-hm_res18_scai-1xb32-6e_lspet-128x96']
    lite = models['td-hm_res18_scai-lite-1xb32_lspet-128x96']
    assert [r['Metrics']['AP'] for r in base['Results']] == [0.1, 0.01]
    assert all('LSPET' in r['Dataset'] or 'COCO' in r['Dataset'] for r in base['Results'])
    assert scai['Results'][0]['Metrics'] == {
        'AP': 0.2, 'AP@0.5': 0.5, 'AP@0.75': 0.25, 'AR': 0.7, 'PCK@0.2': 0.6,
        'distal error / torso': 0.9}
    assert len(scai['Results']) == 1  # no coco row for it
    assert 'Results' not in lite and 'Benchmark' not in lite['Metadata']
    assert all(m['Metadata']['Training Data'] == 'LSPET' for m in meta['Models'])
    collections = {c['Name'] for c in meta['Collections']}
    assert {m['In Collection'] for m in meta['Models']} <= collections
    assert all('LSPET' in c for c in collections)


def test_main_writes_the_file(tmp_path):
    import json
    report = tmp_path / 'report.json'
    report.write_text(json.dumps(dict(rows=dict(test=[_row('base', 0.3)]))))
    out = tmp_path / 'meta.yml'
    mm.main(['--report', str(report), '--out', str(out)])
    text = out.read_text()
    assert text.startswith('# LSPET') and 'AP: 0.3' in text


def test_blazepose_model_from_its_own_report(tmp_path):
    import json
    report = dict(rows=dict(test=[_row('+SCAI', 0.2)]))
    blaze = dict(finished='2030-01-02 00:00 UTC',
                 rows=dict(test=[_row('base', 0.4), _row('+SCAI', 0.41)],
                           coco=[_row('+SCAI', 0.5)]))
    meta = yaml.safe_load(mm.dump(mm.lspet_metafile(report, blaze)))
    models = {m['Name']: m for m in meta['Models']}
    assert models['td-hm_res18_scai-1xb32-6e_lspet-128x96']['Results'][0]['Metrics'][
        'AP'] == 0.2
    bp = models['td-hm_blazepose-ghum-heavy_scai-1xb32-6e_lspet-256x256']
    assert [r['Metrics']['AP'] for r in bp['Results']] == [0.41, 0.5]
    assert all('BlazePose' in r['Dataset'] for r in bp['Results'])
    assert bp['Weights'] == 'checkpoints/scai_blazepose-ghum-heavy_lspet-256x256.pth'
    assert '2030-01-02' in bp['Metadata']['Benchmark']
    # without a BlazePose report the model is listed without Results
    meta = yaml.safe_load(mm.dump(mm.lspet_metafile(report)))
    bp = next(m for m in meta['Models'] if 'blazepose' in m['Name'])
    assert 'Results' not in bp
    (tmp_path / 'r.json').write_text(json.dumps(report))
    (tmp_path / 'b.json').write_text(json.dumps(blaze))
    mm.main(['--report', str(tmp_path / 'r.json'), '--blazepose-report',
             str(tmp_path / 'b.json'), '--out', str(tmp_path / 'm.yml')])
    assert 'AP: 0.41' in (tmp_path / 'm.yml').read_text()


def test_twenty_epoch_base_from_its_own_report():
    report = dict(rows=dict(test=[_row('+SCAI', 0.2)]))
    r20 = dict(finished='2030-01-03 00:00 UTC',
               rows=dict(test=[_row('base', 0.3), _row('+SCAI', 0.31)]))
    models = {m['Name']: m for m in
              yaml.safe_load(mm.dump(mm.lspet_metafile(report, None, r20)))['Models']}
    assert models['td-hm_res18_1xb32-20e_lspet-128x96']['Results'][0]['Metrics']['AP'] == 0.3
    on20 = models['td-hm_res18-20e_scai-1xb32-6e_lspet-128x96']
    assert on20['Results'][0]['Metrics']['AP'] == 0.31 and on20['Config'] == mm.SCAI_20E_CFG
    assert models['td-hm_res18_scai-1xb32-6e_lspet-128x96']['Results'][0]['Metrics'][
        'AP'] == 0.2
