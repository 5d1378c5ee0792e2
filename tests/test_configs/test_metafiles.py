"""Metafiles and ``model-index.yml``: every config exists and parses, imports resolve."""
import os.path as osp

import pytest
import yaml
from mmengine.config import Config

from benchmarks.data_root import repo_root

ROOT = repo_root()


def _imports():
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        return yaml.safe_load(f)['Import']


def _models():
    return [(path, m) for path in _imports()
            for m in yaml.safe_load(open(osp.join(ROOT, path)))['Models']]


def test_model_index_imports_resolve():
    imports = _imports()
    assert 'configs/body_2d_keypoint/scai/coco/scai_coco.yml' in imports
    assert 'configs/body_2d_keypoint/scai/lspet/scai_lspet.yml' in imports
    for path in imports:
        assert osp.isfile(osp.join(ROOT, path)), path


def test_model_index_loads_with_modelindex():
    modelindex = pytest.importorskip('modelindex')
    index = modelindex.load(osp.join(ROOT, 'model-index.yml'))
    names = [m.name for m in index.models]
    assert len(names) == len(set(names)) == len(_models())


def test_collections_are_defined_and_lspet_is_labelled():
    for path in _imports():
        meta = yaml.safe_load(open(osp.join(ROOT, path)))
        defined = {c['Name'] for c in meta['Collections']}
        for m in meta['Models']:
            assert m['In Collection'] in defined
            if '/lspet/' in path:
                assert m['Metadata']['Training Data'] == 'LSPET'
                assert 'LSPET' in m['In Collection']
                for r in m.get('Results', []):
                    assert 'COCO sample' in r['Dataset'] or 'LSPET' in r['Dataset']


@pytest.mark.parametrize('path,model', _models(), ids=lambda x: getattr(x, 'get', None)
                         and x.get('Name') or str(x).split('/')[-1])
def test_metafile_config_exists_and_parses(path, model):
    config = osp.join(ROOT, model['Config'])
    assert osp.isfile(config), model['Config']
    assert model['Name'] == osp.splitext(osp.basename(config))[0]
    cfg = Config.fromfile(config)
    assert 'model' in cfg and cfg.model.type in ('TopdownPoseEstimator',
                                                 'SCAIPoseEstimator')
