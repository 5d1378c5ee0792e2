"""Cost table of the SCAI refinement as ratios to its base, measured in one run.

For every (config, batch) case: parameters, FLOPs (``mmengine.analysis``), CPU time
(medians of interleaved runs) and peak memory of the default heatmap refinement and of
the Lite refiner (``SCAILiteRefiner``), plus the default TTA preset's time per batch,
all next to the base model (random weights; no checkpoint is loaded or downloaded).

Each case runs in a forked child process (the parent does no tensor work), and each
peak-memory figure in its own fresh fork: the kernel's peak-RSS mark is reset right
before one un-warmed call (``/proc/self/clear_refs``, VmHWM), so allocator caches and
earlier peaks cannot hide or inflate it.

Example:
    python tools/benchmark_cost.py                       # the issue's table, ~10 min
    python tools/benchmark_cost.py --quick               # small model at batch 1 only
    python tools/benchmark_cost.py --out docs/benchmarks_cost
"""
import argparse
import datetime
import json
import multiprocessing as mp
import os
import os.path as osp
import platform
import sys
import time
import traceback
from copy import deepcopy
from functools import partial
from statistics import median
from typing import Dict, List, Optional, Tuple


sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository root: benchmarks/
import mmpose_scai  # noqa: F401  (shims first)
from mmengine.config import Config

import mmpose.apis  # noqa: F401  (imported once here, not in every child)
import benchmarks.cost  # noqa: F401
from benchmarks.data_root import repo_root

SCAI = osp.join('configs', 'body_2d_keypoint', 'scai')
LITE = osp.join(SCAI, 'lspet', 'td-hm_res18_scai-lite-1xb32_lspet-128x96.py')
# (label, SCAI config, batches); the Lite variant swaps in the Lite config's refiner
CASES: List[Tuple[str, str, Tuple[int, ...]]] = [
    ('ResNet-18 128×96 (LSPET)',
     osp.join(SCAI, 'lspet', 'td-hm_res18_scai-1xb32-6e_lspet-128x96.py'), (1, 8, 32)),
    ('HRNet-W32 256×192',
     osp.join(SCAI, 'coco', 'td-hm_hrnet-w32_scai-8xb64-210e_coco-256x192.py'), (1, 8, 32)),
    ('ResNet-152 256×192',
     osp.join(SCAI, 'coco', 'td-hm_res152_scai-8xb32-210e_coco-256x192.py'), (1, )),
    ('HRNet-W48 256×192',
     osp.join(SCAI, 'coco', 'td-hm_hrnet-w48_scai-8xb32-210e_coco-256x192.py'), (1, )),
]
MEMORY_VARIANTS = ('base', 'scai', 'lite', 'scai_tta')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=osp.join('docs', 'benchmarks_cost'),
                        help='output stem: writes <out>.md and <out>.json')
    parser.add_argument('--repeat', type=int, default=5, help='timed runs per closure')
    parser.add_argument('--threads', type=int, default=None, help='torch threads')
    parser.add_argument('--tta', default='{}',
                        help='TestTimeAdapter options as JSON ("{}": default preset; '
                        '"null": no TTA)')
    parser.add_argument('--quick', action='store_true',
                        help='only the small model at batch 1 (smoke run)')
    parser.add_argument('--no-flops', action='store_true')
    parser.add_argument('--device', default='cpu',
                        help="e.g. 'cuda:0' (peak memory stays the process's RSS)")
    return parser.parse_args(argv)


# ------------------------------------------------------------------ model building
def build_cfg(config: str, lite: bool = False) -> Config:
    """A SCAI config with ``load_from`` disabled; ``lite`` swaps in the Lite refiner."""
    cfg = Config.fromfile(osp.join(repo_root(), config))
    cfg.load_from = None
    if 'init_cfg' in cfg.model.backbone:
        cfg.model.backbone.init_cfg = None  # no pretrained download
    if lite:
        lite_head = Config.fromfile(osp.join(repo_root(), LITE)).model.head
        cfg.model.head.refiner = deepcopy(lite_head.refiner)
        cfg.model.head.loss = deepcopy(lite_head.loss)
    return cfg


def build_model(cfg: Config, device: str = 'cpu'):
    """Random-weight model on ``device``, eval mode."""
    import torch
    from mmpose.apis import init_model
    torch.manual_seed(0)
    return init_model(cfg, None, device=device).eval()


def input_shape(cfg: Config, batch: int) -> Tuple[int, int, int, int]:
    w, h = cfg.codec['input_size']
    return (batch, 3, h, w)


# -------------------------------------------------------------- child measurements
def measure_case(config: str, batch: int, repeat: int, tta: Optional[dict],
                 flops: bool = True, device: str = 'cpu') -> Dict:
    """Params, FLOPs and interleaved CPU times of SCAI and Lite against the base.

    The Lite refiner is swapped into the same model's head, so the base, the two
    refinements and TTA are timed in one interleaved loop.

    Returns:
        dict: ``scai`` (:func:`cost_summary`'s dict) and ``lite`` (its ``refine_*`` /
        ``ratio_*`` keys for the Lite refiner).
    """
    from benchmarks.cost import cost_summary
    cfg = build_cfg(config)
    model = build_model(cfg, device)
    lite = build_model(build_cfg(config, lite=True), device).head.refiner
    scai = cost_summary(model, input_shape(cfg, batch), repeat=repeat, tta=tta,
                        flops=flops, others=dict(lite=lite))
    return dict(scai=scai, lite=scai['others'].pop('lite'))


def measure_memory(config: str, batch: int, variant: str, tta: Optional[dict],
                   device: str = 'cpu') -> Dict:
    """Peak memory of one un-warmed call of ``variant`` (call in a fresh process).

    ``base``: backbone + base head; ``scai``/``lite``: base then the refinement (one
    round, every chain); ``scai_tta``: the same with test-time adaptation. Nothing runs
    before the measured call, so the allocator has no freed memory to reuse.
    """
    import torch
    from mmpose_scai.tta import TestTimeAdapter
    from benchmarks.cost import peak_memory, worst_case
    model = build_model(build_cfg(config, lite=variant == 'lite'), device)
    x = torch.rand(*input_shape(model.cfg, batch), device=device)
    head = model.head
    cfg = dict(refine=True, rounds=1, tol=0.)
    if variant == 'scai_tta':
        head.adapter = TestTimeAdapter.from_cfg(tta)

    def run():
        with torch.no_grad():
            hm, f = head.base_forward(model.extract_feat(x))
        if variant == 'base':
            return hm
        if variant == 'scai_tta':
            return head.refine(hm, f, cfg)[0]
        with torch.no_grad():
            return head.refine(hm, f, cfg)[0]

    with worst_case(model):
        return peak_memory(run)


def _child(conn, threads: Optional[int], fn, args) -> None:
    try:
        if threads:
            import torch
            torch.set_num_threads(threads)
        conn.send(('ok', fn(*args)))
    except BaseException:  # report any failure to the parent
        conn.send(('error', traceback.format_exc()))
    finally:
        conn.close()


def in_child(fn, *args, threads: Optional[int] = None):
    """Run ``fn(*args)`` in a forked child process and return its result.

    The calling process must not have run tensor ops before: a forked child can
    deadlock in OpenMP once the parent has used its thread pool.
    """
    ctx = mp.get_context('fork')
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, threads, fn, args))
    proc.start()
    send.close()
    try:
        status, value = recv.recv()
    except EOFError:
        status, value = 'error', f'child exited with code {proc.exitcode}'
    proc.join()
    if status != 'ok':
        raise RuntimeError(f'{fn.__name__}{args}: {value}')
    return value


# ------------------------------------------------------------------------- table
def _pct(x: Optional[float]) -> str:
    return '–' if x is None else f'{100 * x:.1f} %'


def _tta_name(tta) -> str:
    if not isinstance(tta, dict):
        return str(tta)
    opts = {k: v for k, v in tta.items() if k != 'preset'}
    return f'preset {tta.get("preset", "default")}' + (f', {opts}' if opts else '')


def _mem(ratio: Optional[float], extra: Optional[float]) -> str:
    return '–' if ratio is None else f'{100 * ratio:.1f} % ({extra:+.0f})'


def case_row(case: Dict) -> Dict:
    """Flat ratios of one case (refinement / base) for the table."""
    s, li, mem = case['scai'], case['lite'], case['memory']
    base_mem = mem['base']['delta_mib']

    def mem_ratio(v: str) -> Optional[float]:
        return mem[v]['peak_mib'] / mem['base']['peak_mib'] if v in mem else None

    def mem_extra(v: str) -> Optional[float]:
        return mem[v]['delta_mib'] - base_mem if v in mem else None

    return dict(
        model=case['model'], batch=case['batch'],
        base_params_m=s['base_params'] / 1e6,
        base_gflops_img=s.get('base_flops', 0) / 1e9 / case['batch'],
        base_ms=1e3 * s['base_seconds'],
        base_peak_mib=mem['base']['peak_mib'], base_work_mib=base_mem,
        scai_params=s['ratio_params'], scai_flops=s.get('ratio_flops'),
        scai_time=s['ratio_seconds'], scai_mem=mem_ratio('scai'),
        lite_params=li['ratio_params'], lite_flops=li.get('ratio_flops'),
        lite_time=li['ratio_seconds'], lite_mem=mem_ratio('lite'),
        tta_time=s.get('tta_ratio_seconds'), tta_mem=mem_ratio('scai_tta'),
        scai_mem_extra_mib=mem_extra('scai'), lite_mem_extra_mib=mem_extra('lite'),
        tta_mem_extra_mib=mem_extra('scai_tta'))


def markdown(report: Dict) -> str:
    """The cost report as markdown (one row per model and batch)."""
    m = report['machine']
    lines = [
        '# SCAI cost as ratios to the base (CPU)', '',
        f'Measured by `{report["command"]}` on {report["date"]} '
        f'({m["cpus"]} CPUs, {m["cpu"]}, torch {m["torch"]} with {m["torch_threads"]} '
        f'threads; load average {report["load_start"]} at start, {report["load_end"]} at '
        f'end; wall time {report["wall_seconds"]:.0f} s, CPU time '
        f'{report.get("cpu_seconds", float("nan")):.0f} s). Random weights, every chain '
        'refined (worst case), one correction round.', '',
        '| model | batch | base: params / GFLOPs per img / ms per batch / peak MiB '
        '| SCAI params | SCAI FLOPs | SCAI time | SCAI peak mem '
        '| Lite params | Lite FLOPs | Lite time | Lite peak mem '
        '| SCAI+TTA time | SCAI+TTA peak mem |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|'
    ]
    for r in report['rows']:
        lines.append(
            f'| {r["model"]} | {r["batch"]} | {r["base_params_m"]:.2f} M / '
            f'{r["base_gflops_img"]:.2f} / {r["base_ms"]:.0f} / {r["base_peak_mib"]:.0f} '
            f'| {_pct(r["scai_params"])} | {_pct(r["scai_flops"])} '
            f'| {_pct(r["scai_time"])} | {_mem(r["scai_mem"], r["scai_mem_extra_mib"])} '
            f'| {_pct(r["lite_params"])} | {_pct(r["lite_flops"])} '
            f'| {_pct(r["lite_time"])} | {_mem(r["lite_mem"], r["lite_mem_extra_mib"])} '
            f'| {_pct(r["tta_time"])} | {_mem(r["tta_mem"], r["tta_mem_extra_mib"])} |')
    lines += [
        '',
        'Columns: params, FLOPs (multiply-adds, `mmengine.analysis.FlopAnalyzer`) and '
        'CPU time of the refinement alone, as a share of the base model (backbone + '
        'head, no flip). Time: median over the repeats of the per-repeat ratio, the base '
        'and the refinement run in turn on the same batch so that both see the same '
        'background load. SCAI+TTA time: the refinement with test-time adaptation '
        f'({_tta_name(report["tta"])}) per batch, as a share of one base forward (goal ≤ 100 %). '
        'Peak memory: peak resident memory of the whole pipeline (process, weights, '
        'base forward, then the refinement) as a share of the base pipeline\'s, each '
        'measured once in a fresh forked process with the kernel peak-RSS mark reset '
        'before the call (`/proc/self/clear_refs`, VmHWM; method '
        f'`{report["memory_method"]}`); in brackets, the pipeline\'s working memory '
        '(peak minus the resident memory before the call) minus the base\'s, in MiB. '
        'The refinement runs after the base forward, so it adds to the peak only where '
        'its own working memory exceeds the base\'s.',
    ]
    return '\n'.join(lines) + '\n'


def machine() -> Dict:
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(ln.split(':', 1)[1].strip() for ln in f
                       if ln.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return dict(platform=platform.platform(), python=platform.python_version(),
                torch=torch.__version__, cpus=os.cpu_count(),
                torch_threads=torch.get_num_threads(), cpu=cpu)


def run(args: argparse.Namespace, log=partial(print, flush=True)) -> Dict:
    """Measure every case; returns the report (also its rows for the table)."""
    tta = json.loads(args.tta)
    cases = [(CASES[0][0], CASES[0][1], (1, ))] if args.quick else CASES
    start = time.perf_counter()
    load_start = round(os.getloadavg()[0], 2)
    results = []
    for label, config, batches in cases:
        for batch in batches:
            t0 = time.perf_counter()
            log(f'[{time.perf_counter() - start:6.0f} s] {label} batch {batch}: '
                'params, FLOPs, times ...')
            case = in_child(measure_case, config, batch, args.repeat, tta,
                            not args.no_flops, args.device, threads=args.threads)
            case['memory'] = {}
            for variant in MEMORY_VARIANTS:
                if variant == 'scai_tta' and tta is None:
                    continue
                case['memory'][variant] = in_child(measure_memory, config, batch,
                                                   variant, tta, args.device,
                                                   threads=args.threads)
            case.update(model=label, config=config, batch=batch,
                        seconds=round(time.perf_counter() - t0, 1))
            row = case_row(case)
            log(f'[{time.perf_counter() - start:6.0f} s]   SCAI params '
                f'{_pct(row["scai_params"])} FLOPs {_pct(row["scai_flops"])} time '
                f'{_pct(row["scai_time"])} mem {_pct(row["scai_mem"])}; Lite time '
                f'{_pct(row["lite_time"])}; TTA time {_pct(row["tta_time"])}')
            results.append(case)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    mem_methods = sorted({v['method'] for c in results for v in c['memory'].values()})
    import resource
    cpu = sum(getattr(resource.getrusage(who), f) for who in
              (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ('ru_utime', 'ru_stime'))
    return dict(
        command='python tools/benchmark_cost.py' + (' ' + ' '.join(sys.argv[1:])
                                                     if sys.argv[1:] else ''),
        date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        wall_seconds=round(time.perf_counter() - start, 1), cpu_seconds=round(cpu, 1),
        load_start=load_start, load_end=round(os.getloadavg()[0], 2),
        machine=machine(), repeat=args.repeat, tta=tta if tta is not None else 'off',
        memory_method=','.join(mem_methods),
        rows=[case_row(c) for c in results], cases=results)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    report = run(args)
    out = args.out if osp.isabs(args.out) else osp.join(repo_root(), args.out)
    os.makedirs(osp.dirname(out) or '.', exist_ok=True)
    with open(out + '.json', 'w') as f:
        json.dump(report, f, indent=1)
    text = markdown(report)
    with open(out + '.md', 'w') as f:
        f.write(text)
    print(text)
    print(f'wrote {osp.relpath(out, repo_root())}.md/.json '
          f'({report["wall_seconds"]:.0f} s)')


if __name__ == '__main__':
    main()
