"""Step 1: the base model — reuse, resume or train it; its learning curve; the pick.

The base is an ordinary MMPose config trained by MMPose's own ``tools/train.py`` in
``<work_dir>/base``. A run already in progress there (another process writing the same
work dir) is waited for, never restarted; an interrupted run is resumed
(``--resume``); a finished one is reused. The checkpoint is picked by validation AP only
(the validation numbers MMEngine logs after every epoch).
"""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

EPOCH_CKPT = re.compile(r'epoch_(\d+)\.pth$')


def mmpose_train_script() -> str:
    """MMPose's ``tools/train.py`` as installed by ``mim`` (``mmpose/.mim``)."""
    import mmpose
    path = osp.join(osp.dirname(mmpose.__file__), '.mim', 'tools', 'train.py')
    if not osp.exists(path):
        raise FileNotFoundError(f'MMPose train script not found at {path}')
    return path


def epoch_checkpoints(work_dir: str) -> Dict[int, str]:
    """``{epoch: path}`` of the ``epoch_N.pth`` files in ``work_dir``."""
    out = {}
    for path in glob.glob(osp.join(work_dir, 'epoch_*.pth')):
        m = EPOCH_CKPT.search(path)
        if m:
            out[int(m.group(1))] = path
    return dict(sorted(out.items()))


def val_curve(work_dir: str, key: str = 'coco/AP') -> Dict[int, Dict[str, float]]:
    """Validation metrics per epoch from every run's ``vis_data/scalars.json``.

    A resumed run writes a new timestamped folder; a later run's value for an epoch
    replaces an earlier one.

    Returns:
        dict: ``{epoch: {'coco/AP': .., 'coco/AP .5': .., ...}}``.
    """
    curve: Dict[int, Dict[str, float]] = {}
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    for path in files:
        with open(path) as f:
            for line in f:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if key in row and 'step' in row:
                    curve[int(row['step'])] = {k: v for k, v in row.items()
                                               if k.startswith('coco/')}
    return dict(sorted(curve.items()))


def train_epochs_done(work_dir: str) -> int:
    ckpts = epoch_checkpoints(work_dir)
    return max(ckpts) if ckpts else 0


def running_trainers(work_dir: str) -> List[int]:
    """PIDs of processes whose command line trains into ``work_dir`` (read from /proc;
    nothing is signalled)."""
    target = osp.abspath(work_dir).rstrip('/')
    rel = osp.relpath(target)
    pids = []
    for d in glob.glob('/proc/[0-9]*/cmdline'):
        try:
            with open(d, 'rb') as f:
                args = f.read().decode(errors='ignore').split('\0')
        except OSError:
            continue
        if not any(a.endswith('train.py') for a in args):
            continue
        pid = int(d.split('/')[2])
        try:
            cwd = os.readlink(f'/proc/{pid}/cwd')
        except OSError:
            cwd = os.getcwd()
        for i, a in enumerate(args[:-1]):
            if a == '--work-dir' and (
                    osp.normpath(osp.join(cwd, args[i + 1])) == target
                    or args[i + 1].rstrip('/') == rel):
                pids.append(pid)
    return [p for p in pids if p != os.getpid()]


def pick_checkpoint(curve: Dict[int, Dict[str, float]], ckpts: Dict[int, str],
                    key: str = 'coco/AP') -> Optional[int]:
    """The epoch with the best validation ``key`` among those with a checkpoint (the
    earliest on a tie); None if there is none."""
    cands = [(v[key], -e) for e, v in curve.items() if e in ckpts and key in v]
    if not cands:
        return None
    return -max(cands)[1]


def ensure_base(config: str, work_dir: str, max_epochs: int, log_file: str,
                wait: bool = True, poll_s: float = 60.0, nice: int = 10,
                echo: Callable[[str], None] = print, extra_args: Optional[list] = None,
                deadline: Optional[float] = None) -> Dict:
    """Make sure the base has trained ``max_epochs`` epochs in ``work_dir``.

    - finished (``epoch_<max_epochs>.pth`` there): reuse;
    - another process is training into ``work_dir``: wait for it (``wait``), printing
      the progress, or return at once (``wait=False``);
    - otherwise start MMPose's ``tools/train.py`` (with ``--resume`` when checkpoints
      exist), niced, logging to ``log_file``, and wait.

    ``deadline`` (a ``time.time()`` value): stop waiting then and go on with the
    epochs that exist (the caller reports it).

    Returns:
        dict: ``status`` ('reused', 'waited', 'trained', 'partial'), ``epochs`` done.
    """
    status = 'reused'
    if train_epochs_done(work_dir) >= max_epochs:
        return dict(status=status, epochs=train_epochs_done(work_dir))
    pids = running_trainers(work_dir)
    proc = None
    if pids:
        status = 'waited'
        echo(f'[base] training already running in {work_dir} (pid {pids}); '
             f'{train_epochs_done(work_dir)}/{max_epochs} epochs done')
    else:
        status = 'trained'
        cmd = ['nice', '-n', str(nice), sys.executable, mmpose_train_script(), config,
               '--work-dir', work_dir] + list(extra_args or [])
        if epoch_checkpoints(work_dir):
            cmd.append('--resume')
        echo(f'[base] starting: {" ".join(cmd)} (log {log_file})')
        os.makedirs(osp.dirname(osp.abspath(log_file)), exist_ok=True)
        log = open(log_file, 'a')
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if not wait:  # a training started here goes on in the background
        return dict(status='partial', epochs=train_epochs_done(work_dir))
    last = -1
    while True:
        done = train_epochs_done(work_dir)
        if done != last:
            curve = val_curve(work_dir)
            ap = curve.get(done, {}).get('coco/AP')
            echo(f'[base] {done}/{max_epochs} epochs'
                 + (f', val AP as logged by the training {ap:.4f}' if ap is not None
                    else '')
                 + f' ({time.strftime("%H:%M:%S")})')
            last = done
        if done >= max_epochs:
            break
        alive = proc.poll() is None if proc is not None else bool(running_trainers(
            work_dir))
        if not alive:
            if proc is not None and proc.returncode:
                raise RuntimeError(f'base training failed (exit {proc.returncode}); see '
                                   f'{log_file}')
            if train_epochs_done(work_dir) < max_epochs:
                return dict(status='partial', epochs=train_epochs_done(work_dir))
            break
        if deadline is not None and time.time() > deadline:
            echo(f'[base] deadline reached with {done}/{max_epochs} epochs; training '
                 'continues in the background, going on with the epochs done')
            return dict(status='partial', epochs=done)
        time.sleep(poll_s)
    return dict(status=status, epochs=train_epochs_done(work_dir))
