"""Markdown tables of a benchmark report (the dict written to ``report.json``)."""
from typing import Dict, List, Optional


def _f(v, fmt='.4f', none='–') -> str:
    if v is None:
        return none
    try:
        return format(v, fmt)
    except (TypeError, ValueError):
        return str(v)


def _pct(v) -> str:
    return _f(None if v is None else 100 * v, '.1f')


def table(header: List[str], rows: List[List[str]]) -> str:
    out = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
    out += ['| ' + ' | '.join(r) + ' |' for r in rows]
    return '\n'.join(out)


def rows_table(rows: List[dict], boot: Optional[Dict[str, dict]] = None) -> str:
    boot = boot or {}
    body = []
    for r in rows:
        name = r['variant']['name']
        b = boot.get(name) or r.get('dAP_vs_base_flip')
        d = ('ref.' if name == 'base+flip' else
             (f'{100 * b["diff"]:+.1f} [{100 * b["lo"]:+.1f}, {100 * b["hi"]:+.1f}]'
              if b and b.get('diff') is not None and b.get('lo') is not None else '–'))
        body.append([name, _pct(r['AP']), _pct(r['AP50']), _pct(r['AP75']), _pct(r['AR']),
                     d, _pct(r['pck']), _pct(r['pck_distal']), _f(r['distal_err'], '.3f'),
                     _pct(r.get('corrected_frac')), _f(r.get('seconds'), '.1f')])
    return table(['row', 'AP', 'AP50', 'AP75', 'AR', 'ΔAP vs base+flip [95% CI]',
                  'PCK@0.2', 'PCK@0.2 distal', 'distal err ÷ torso', 'chains changed %',
                  'SCAI s'], body)


def lite_section(lite: dict) -> str:
    """Training, validation choices and latency of SCAI-Lite (its rows are in the
    split tables, named ``+SCAI-Lite...``)."""
    parts = ['\n## SCAI-Lite (coordinate MLPs; rows `+SCAI-Lite…` in the tables above)']
    tr = lite.get('training') or {}
    em = tr.get('error_model') or {}
    parts.append(
        f'Trained on {tr.get("priors")} {tr.get("prior_poses") or ""}, distal joints '
        f'perturbed by the base\'s measured validation errors ({em.get("source")}, median '
        f'{_f(em.get("median_error_px"), ".2f")} heatmap px), then fine-tuned on the '
        f'base\'s predictions on {tr.get("train_instances")} LSPET-train instances '
        '(holdout excluded).\n')
    grid = lite.get('grid') or []
    if grid:
        parts.append(table(['start', 'max_distal_score', 'val AP', 'PCK@0.2',
                            'distal err', 'chains changed %'],
                           [[g['start'], str(g['max_distal_score']), _pct(g['AP']),
                             _pct(g['pck']), _f(g['distal_err'], '.3f'),
                             _pct(g.get('corrected_frac'))] for g in grid]))
        parts.append('')
        parts.append(table(['TTA select_quantile', 'safeguard', 'val AP', 'PCK@0.2',
                            'distal err'],
                           [[str(g['select_quantile']), g['safeguard'], _pct(g['AP']),
                             _pct(g['pck']), _f(g['distal_err'], '.3f')]
                            for g in lite.get('tta_grid') or []]))
        parts.append(f'\nChosen on the validation split: `{lite.get("chosen")}`.')
    lat = lite.get('latency') or {}
    if lat:
        body = []
        for name, lt in lat.items():
            body.append([name.replace('_', ' '), str(lt.get('batch')), str(lt.get('threads')),
                         _pct(lt.get('refined_frac')), _f(lt.get('ms_per_instance'), '.3f'),
                         _f(lt.get('tta_ms_per_instance'), '.3f')])
        parts.append('\nRefinement latency on CPU, excluding the base (median; real '
                     'LSPET-test heatmaps):\n')
        parts.append(table(['selection', 'batch', 'threads', 'chains refined %',
                            'ms / instance', 'ms / instance with TTA'], body))
    return '\n'.join(parts)


def render_markdown(rep: dict) -> str:
    parts = []
    base = rep.get('base', {})
    parts.append('## Base model learning curve (LSPET validation split; AP, PCK in %)')
    curve = base.get('curve') or {}
    if curve:
        body = []
        for e, v in sorted(curve.items(), key=lambda kv: int(kv[0])):
            val, test = v.get('val', {}), v.get('test', {})
            mark = ' ←' if str(e) == str(base.get('epoch')) else ''
            body.append([f'{e}{mark}', _pct(val.get('AP')), _pct(val.get('pck')),
                         _f(val.get('distal_err'), '.3f'), _pct(test.get('AP'))])
        parts.append(table(['epoch', 'val AP', 'val PCK@0.2', 'val distal err',
                            'test AP (report only)'], body))
    parts.append(f'\nPicked: epoch {base.get("epoch")} by {base.get("picked_by")} '
                 f'({base.get("epochs_done")} of {base.get("epochs_planned")} epochs '
                 f'trained; status {base.get("status")}).')
    tun = rep.get('tuning', {})
    if tun:
        parts.append('\n## Tuning on the validation split')
        parts.append(table(['start', 'rounds', 'val AP', 'PCK@0.2', 'distal err'],
                           [[g['start'], str(g['rounds']), _pct(g['AP']), _pct(g['pck']),
                             _f(g['distal_err'], '.3f')] for g in tun['grid']]))
        parts.append('')
        parts.append(table(['TTA select_quantile', 'safeguard', 'val AP', 'PCK@0.2',
                            'distal err'],
                           [[str(g['select_quantile']), g['safeguard'], _pct(g['AP']),
                             _pct(g['pck']), _f(g['distal_err'], '.3f')]
                            for g in tun['tta_grid']]))
        parts.append(f'\nBase val AP {_pct(tun.get("base_val_AP"))}; chosen: '
                     f'`{tun.get("chosen")}`.')
    for split, title in (('test', 'LSPET-test'),
                         ('coco', 'COCO sample, 12 limb joints (cross-dataset)')):
        rows = (rep.get('rows') or {}).get(split)
        if not rows:
            continue
        title += f' ({rows[0]["n"]} persons; AP etc. in %)'
        boot = (rep.get('analysis') or {}).get('bootstrap', {}).get(split, {})
        parts.append(f'\n## {title}')
        parts.append(rows_table(rows, boot))
    lite = rep.get('lite')
    if lite:
        parts.append(lite_section(lite))
    an = rep.get('analysis') or {}
    if an:
        parts.append('\n## Is E_s a quality signal? (base chains: E_s of Γ on the base '
                     'heatmaps vs the base prediction\'s error; SCAI: final E_s vs the '
                     'refined prediction\'s error)')
        body = []
        for split in ('val', 'test', 'coco'):
            if split not in an:
                continue
            for who in ('base', 'base_rel', 'anchor_norm', 'scai'):
                if who not in an[split]['signal']:
                    continue
                s = an[split]['signal'][who]
                body.append([split, who, _f(s['batch_r_err'], '+.3f'),
                             _f(s['batch_r_acc'], '+.3f'), _f(s['inst_r_err'], '+.3f'),
                             _f(s['chain_spearman_es'], '+.3f'),
                             _f(s['chain_spearman_conf'], '+.3f'), str(s['n_chain'])])
        parts.append('(`base_rel`: E_s ÷ ‖H_A‖₂ of the base chain; `anchor_norm`: ‖H_A‖₂ '
                     'alone. Positive Spearman = the signal rises with the error, as a '
                     'quality signal should; r against PCK should then be negative.)\n')
        parts.append(table(['split', 'signal', 'r batch (err)', 'r batch (PCK)',
                            'r instance (err)', 'Spearman E_s', 'Spearman 1−score',
                            'chains'], body))
        body = []
        for split in ('val', 'test', 'coco'):
            for who in ('base', 'scai'):
                per = (an.get(split, {}).get('signal', {}).get(who) or {}).get('per_chain')
                for name, c in (per or {}).items():
                    body.append([split, who, name, _f(c['spearman_es'], '+.3f'),
                                 _f(c['spearman_conf'], '+.3f'), str(c['n'])])
        if body:
            parts.append('\n### Per chain: Spearman with the error of the chain\'s distal '
                         'joint (E_s vs the base\'s own confidence, 1 − score)\n')
            parts.append(table(['split', 'signal', 'chain', 'Spearman E_s',
                                'Spearman 1−score', 'n'], body))
        parts.append('\n## Accept-if-E_s-falls vs never / always / oracle (distal joint '
                     'of each refinable chain)')
        body = []
        for split in ('val', 'test', 'coco'):
            if split not in an:
                continue
            s = an[split]['selection']
            body.append([split, str(s['n']), _pct(s['accept_frac']), _pct(s['rule_acc']),
                         _pct(s['never_acc']), _pct(s.get('tie_frac')),
                         _pct(s.get('rule_acc_nontie')),
                         ' / '.join(_pct(s[f'{k}_pck']) for k in
                                    ('never', 'always', 'rule', 'oracle')),
                         ' / '.join(_f(s[f'{k}_err'], '.3f') for k in
                                    ('never', 'always', 'rule', 'oracle'))])
        parts.append(table(['split', 'chains', 'accepted %', 'rule right %',
                            'never right %', 'ties %', 'rule right % (non-ties)',
                            'PCK@0.2 never/always/rule/oracle',
                            'err never/always/rule/oracle'], body))
    parts.append(f'\nWall time {rep.get("wall_seconds")} s; machine {rep.get("machine")}; '
                 f'finished {rep.get("finished")}.')
    return '\n'.join(parts) + '\n'


def bases_table(reports: Dict[str, Optional[dict]]) -> str:
    """One line per base (name -> benchmark report, None: not finished): how SCAI's
    gain and E_s's quality depend on the strength of the base, on LSPET-test (the
    COCO-sample column compares +SCAI+TTA with +SCAI)."""

    def row(rep: dict, split: str, name: str) -> Optional[dict]:
        return next((r for r in (rep.get('rows') or {}).get(split, [])
                     if r['variant']['name'] == name), None)

    def ci(r: Optional[dict]) -> str:
        b = (r or {}).get('dAP_vs_base_flip')
        if not b or b.get('lo') is None:
            return '–'
        return f'{100 * b["diff"]:+.1f} [{100 * b["lo"]:+.1f}, {100 * b["hi"]:+.1f}]'

    body = []
    for base, rep in reports.items():
        if rep is None:
            body.append([base] + ['not finished this session'] + [''] * 9)
            continue
        t = {n: row(rep, 'test', n) for n in ('base', 'base+flip', '+SCAI', '+SCAI+flip',
                                               '+SCAI+TTA', '+SCAI+TTA+flip')}
        best = max((n for n in t if n.startswith('+SCAI') and t[n]),
                   key=lambda n: t[n]['AP'], default=None)
        err0 = (t['base+flip'] or {}).get('distal_err')
        err1 = (t[best] or {}).get('distal_err') if best else None
        rel = f'{100 * (err1 / err0 - 1):+.0f} %' if err0 and err1 else '–'
        c_scai, c_tta = row(rep, 'coco', '+SCAI'), row(rep, 'coco', '+SCAI+TTA')
        sig = (((rep.get('analysis') or {}).get('test') or {}).get('signal') or {}).get(
            'base') or {}
        rot = row(rep, 'test', 'base rot4 (peak)')
        body.append([
            base, _pct((t['base'] or {}).get('AP')), _pct((t['base+flip'] or {}).get('AP')),
            f'{best}: {_pct(t[best]["AP"])}' if best else '–', ci(t[best] if best else None),
            f'{_f(err0, ".3f")} → {_f(err1, ".3f")} ({rel})',
            f'{_pct((c_scai or {}).get("AP"))} / {_pct((c_tta or {}).get("AP"))}',
            _f(sig.get('chain_spearman_es'), '+.3f'), _f(sig.get('chain_spearman_conf'), '+.3f'),
            _pct((rot or {}).get('AP')),
            _f((rep.get('first_run') or {}).get('total_after_base_seconds',
                                                 rep.get('wall_seconds')), '.0f')])
    return table(['base', 'AP base', 'AP base+flip', 'best SCAI row: AP',
                  'ΔAP vs base+flip [95% CI]', 'distal err ÷ torso (base+flip → best)',
                  'COCO AP +SCAI / +SCAI+TTA', 'Spearman E_s', 'Spearman 1−score',
                  'AP 4-rot. base', 'wall s (run)'], body)
