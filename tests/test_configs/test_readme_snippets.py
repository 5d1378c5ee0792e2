"""Every config snippet of the READMEs loads from a folder outside the repository.

The snippets are read from the Markdown itself (python code blocks that assign
``_base_``), so a README that drifts from the configs fails here.
"""
import os.path as osp
import re
from typing import List, Tuple

import pytest
from mmengine.config import Config

import mmpose_scai  # noqa: F401  (registers the mmpose_scai:: scope)
from mmpose.registry import HOOKS, MODELS
from benchmarks.data_root import repo_root

READMES = ('README.md', 'configs/body_2d_keypoint/scai/README.md')
BLOCK = re.compile(r'^```python\n(.*?)^```', re.S | re.M)


def config_snippets() -> List[Tuple[str, str]]:
    """(id, code) of every python block that is a config (assigns ``_base_``)."""
    out = []
    for readme in READMES:
        with open(osp.join(repo_root(), readme), encoding='utf-8') as f:
            text = f.read()
        for match in BLOCK.finditer(text):
            code = match.group(1)
            if re.search(r'^_base_\s*=', code, re.M):
                line = text[:match.start()].count('\n') + 2
                out.append((f'{readme}:{line}', code))
    return out


SNIPPETS = config_snippets()


def test_snippets_found():
    """The extraction finds the documented configs (a renamed fence would hide them)."""
    readmes = {i.split(':')[0] for i, _ in SNIPPETS}
    assert readmes == set(READMES)
    assert len(SNIPPETS) >= 6
    assert sum('mmpose_scai::' in code for _, code in SNIPPETS) >= 4
    # no snippet relies on the repository's layout
    for name, code in SNIPPETS:
        assert not re.search(r"'\.{1,2}/", code), f'{name}: relative path in a snippet'


@pytest.mark.parametrize('name,code', SNIPPETS, ids=[i for i, _ in SNIPPETS])
def test_snippet_loads_outside_the_repo(name, code, tmp_path, monkeypatch):
    assert not str(tmp_path).startswith(repo_root())
    monkeypatch.chdir(tmp_path)
    path = tmp_path / 'snippet_config.py'
    path.write_text(code)
    cfg = Config.fromfile(str(path))
    assert 'model' in cfg, name
    for hook in cfg.get('custom_hooks', []):  # the hooks build (TTA switch)
        HOOKS.build(dict(hook))
    if any(h['type'] == 'SCAITTAHook' for h in cfg.get('custom_hooks', [])):
        types = [h['type'] for h in cfg.custom_hooks]
        assert types == ['SyncBuffersHook', 'SCAITTAHook'], types
    if cfg.model.type == 'SCAIPoseEstimator':
        assert cfg.model.head.type == 'SCAIHead'
    # the model builds (random weights; a pretrained backbone is not downloaded)
    cfg.model.backbone.init_cfg = None
    MODELS.build(cfg.model)
