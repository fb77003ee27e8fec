"""A run with several training processes (DDP/FSDP over W devices): its ranks started here, watched, one outcome.

Lightning would start ranks 1..W-1 by re-running `sys.argv`, which under `-m` starts the whole sweep again in
every rank. Instead the job (a single run, or one trial on any launcher) starts its node's ranks itself, each
`python -m patchtst_hpo.train` on the job's resolved config (`ranks/rank_config.yaml` in the run folder), and
waits for them:
- every rank gets LOCAL_RANK, NODE_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (torchrun's contract), so
  Lightning takes the processes as created outside and starts nothing itself;
- when a rank fails or dies, the others get `trainer.rank_grace_seconds` to stop on their own (a collective with
  a dead peer raises, at the latest after the DDP strategy's `timeout`), then are killed; the job raises one line
  naming the first rank that failed and why;
- rank 0 writes metrics.json, which the job returns; a trial pruned by rank 0 (all ranks stop together) is
  raised as optuna.TrialPruned.
Processes a scheduler started one per rank (srun with W tasks, torchrun) are left to Lightning. Several nodes
(trainer.num_nodes > 1): one job task per node (SLURM: nodes=N, tasks_per_node=1), each starting its node's
ranks; they meet on the job's first node.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from patchtst_hpo.atomic import write_text
from patchtst_hpo.errors import ConfigError, DataError, PatchTSTHPOError, RunFailed

log = logging.getLogger(__name__)
STATUS_ENV = "PATCHTST_HPO_RANK_STATUS"  # where a rank we started writes how it ended
EXIT_PRUNED = 4  # a rank whose trial was pruned
# Strategies whose processes Lightning starts itself in a way that survives a sweep (spawn/fork, not re-run argv).
SPAWNING = ("ddp_spawn", "ddp_fork", "ddp_notebook", "fsdp_spawn")
SEND_BACK = {"ConfigError": ConfigError, "DataError": DataError}
NODE_WAIT_SECONDS = 120  # a later node waits this long for the first node's metrics.json (shared file system)


def _strategy_name(cfg: DictConfig) -> str:
    s = cfg.trainer.get("strategy", "auto")
    return str(s.get("_target_", "")) if OmegaConf.is_dict(s) else str(s)


def started_outside(env: dict[str, str], world: int) -> bool:
    """The processes are ranks already: torchrun/Lightning/us (LOCAL_RANK), or srun with one task per rank."""
    if "LOCAL_RANK" in env:
        return True
    tasks = env.get("SLURM_NTASKS", "")
    return (
        tasks.isdigit() and int(tasks) == world and world > 1 and env.get("SLURM_JOB_NAME") != "interactive"
    )


def needs_ranks(cfg: DictConfig, env: dict[str, str] | None = None) -> bool:
    """True when this process must start the run's ranks (W > 1, not started by a scheduler, not spawned)."""
    from patchtst_hpo.devices import world_size  # torch: train.py imports this module before validation

    env = dict(os.environ) if env is None else env
    w = world_size(cfg)
    return w > 1 and not started_outside(env, w) and _strategy_name(cfg) not in SPAWNING


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rendezvous(cfg: DictConfig, env: dict[str, str]) -> tuple[int, str, int]:
    """(node rank, main address, main port) of this node's ranks."""
    nodes = int(cfg.trainer.get("num_nodes", 1) or 1)
    if nodes == 1:
        return 0, "127.0.0.1", _free_port()
    if all(k in env for k in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK")):
        return int(env["NODE_RANK"]), env["MASTER_ADDR"], int(env["MASTER_PORT"])
    if all(k in env for k in ("SLURM_NODEID", "SLURM_JOB_NODELIST", "SLURM_JOB_ID", "SLURM_NNODES")):
        if int(env["SLURM_NNODES"]) != nodes:
            raise ConfigError(
                f"trainer.num_nodes={nodes} but the SLURM job has {env['SLURM_NNODES']} nodes; set "
                f"hydra.launcher.nodes={nodes} (and hydra.launcher.tasks_per_node=1)"
            )
        from lightning.fabric.plugins.environments.slurm import SLURMEnvironment

        root = SLURMEnvironment.resolve_root_node_address(env["SLURM_JOB_NODELIST"])
        return int(env["SLURM_NODEID"]), root, 15000 + int(env["SLURM_JOB_ID"][-4:])
    raise ConfigError(
        f"trainer.num_nodes={nodes}: the nodes cannot find each other; run one task per node under SLURM "
        f"(hydra/launcher=submitit_slurm hydra.launcher.nodes={nodes} hydra.launcher.tasks_per_node=1) or set "
        f"MASTER_ADDR, MASTER_PORT and NODE_RANK on every node"
    )


def _write_config(cfg: DictConfig, folder: Path) -> None:
    """The job's config, resolved (every rank trains on exactly these values), as a primary config."""
    folder.mkdir(parents=True, exist_ok=True)
    body = OmegaConf.to_container(cfg, resolve=True)
    text = OmegaConf.to_yaml({"defaults": [{"hydra": "default"}, "_self_"], **body})
    write_text(folder / "rank_config.yaml", text)  # atomic: another node's job may write the same file


def run_ranks(cfg: DictConfig) -> dict[str, Any]:
    """Start this node's ranks on `cfg`, wait for all, return rank 0's metrics.json (raise when one failed)."""
    out = Path(cfg.paths.output_dir)
    folder = out / "ranks"
    _write_config(cfg, folder)
    from patchtst_hpo.devices import local_world

    env = dict(os.environ)
    local, nodes = local_world(cfg), int(cfg.trainer.get("num_nodes", 1) or 1)
    node, addr, port = rendezvous(cfg, env)
    world = local * nodes
    log.info(
        "starting %d training processes on node %d of %d (world %d, %s:%d)",
        local,
        node,
        nodes,
        world,
        addr,
        port,
    )
    procs = {}
    try:
        for lr in range(local):
            g = node * local + lr
            procs[g] = _start(g, lr, node, world, addr, port, folder, out, env)
        codes = _wait(procs, float(cfg.trainer.rank_grace_seconds))
    finally:
        for p in procs.values():
            _kill(p)
    return _outcome(codes, folder, out, world, node * local)


def _start(g, lr, node, world, addr, port, folder: Path, out: Path, env: dict) -> subprocess.Popen:
    child = {k: v for k, v in env.items() if k not in ("SLURM_NTASKS", "SLURM_NPROCS")}  # not srun's ranks
    child.update(
        LOCAL_RANK=str(lr),
        NODE_RANK=str(node),
        WORLD_SIZE=str(world),
        MASTER_ADDR=addr,
        MASTER_PORT=str(port),
        PYTHONUNBUFFERED="1",
        **{STATUS_ENV: str(folder / f"rank{g}.json")},
    )
    cmd = [sys.executable, "-m", "patchtst_hpo.train", f"--config-dir={folder}", "--config-name=rank_config"]
    cmd += [f"hydra.run.dir={out}", "hydra.output_subdir=null", f"hydra.job.name=rank{g}"]
    stream = None if g == 0 else open(folder / f"rank{g}.out", "wb")  # noqa: SIM115  (closed by the child)
    try:
        return subprocess.Popen(
            cmd,
            env=child,
            stdout=stream,
            stderr=subprocess.STDOUT if stream else None,
            start_new_session=True,
        )
    finally:
        if stream:
            stream.close()


def _wait(procs: dict[int, subprocess.Popen], grace: float) -> dict[int, tuple[int, float]]:
    """Exit code and time of each rank; after the first failure the rest get `grace` seconds, then SIGKILL."""
    done: dict[int, tuple[int, float]] = {}
    first_failure: float | None = None
    while len(done) < len(procs):
        now = time.monotonic()
        for g, p in procs.items():
            if g not in done and (code := p.poll()) is not None:
                done[g] = (code, now)
                if code not in (0, 3) and first_failure is None:  # 3: finished, objective not finite
                    first_failure = now
        if first_failure is not None and now - first_failure > grace:
            for g, p in procs.items():
                if g not in done:
                    _kill(p)
                    done[g] = (p.wait(), now + 1e-3)
        time.sleep(0.1)
    return done


def _kill(p: subprocess.Popen) -> None:
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _why(g: int, code: int, world: int, folder: Path) -> str:
    status = _read(folder / f"rank{g}.json")
    if code < 0:
        return f"rank {g} of {world} died of {signal.Signals(-code).name}"
    if status.get("reason"):
        return f"rank {g} of {world} failed: {status['reason']}"
    where = "the run's stderr" if g == 0 else str(folder / f"rank{g}.out")
    return f"rank {g} of {world} exited with code {code} (see {where})"


def _outcome(codes: dict[int, tuple[int, float]], folder: Path, out: Path, world: int, rank0: int) -> dict:
    # first to fail first; within one poll a rank that died of a signal is the cause, not its peers' errors
    failed = sorted((t, code >= 0, g) for g, (code, t) in codes.items() if code not in (0, 3))
    if not failed:
        deadline = time.monotonic() + (NODE_WAIT_SECONDS if rank0 else 0)
        while not (out / "metrics.json").exists() and time.monotonic() < deadline:
            time.sleep(0.5)  # another node: global rank 0 (on the first node) writes the result
        result = _read(out / "metrics.json")
        if not result:
            raise RunFailed(f"all {world} ranks finished but rank 0 wrote no {out / 'metrics.json'}")
        return result
    statuses = {g: _read(folder / f"rank{g}.json") for g in codes}
    if rank0 in statuses and statuses[rank0].get("state") == "pruned":
        import optuna

        raise optuna.TrialPruned(statuses[rank0]["reason"])
    g = failed[0][2]
    reason = _why(g, codes[g][0], world, folder)
    others = [h for *_, h in failed[1:]]
    tail = (
        f"; then rank{'s' if len(others) > 1 else ''} {', '.join(map(str, others))} stopped" if others else ""
    )
    raise SEND_BACK.get(statuses[g].get("type"), RunFailed)(f"{reason}{tail} (logs: {folder})")


def record_end(exc: BaseException) -> int:
    """In a rank we started: write how it ended for the job that waits on it; returns the exit code to use."""
    path = os.environ.get(STATUS_ENV)
    import optuna

    from patchtst_hpo.messages import one_line

    pruned = isinstance(exc, optuna.TrialPruned)
    if path:
        reason = str(exc) if pruned else f"{type(exc).__name__}: {one_line(exc)}"
        state = {"state": "pruned" if pruned else "failed", "type": type(exc).__name__, "reason": reason}
        Path(path).write_text(json.dumps(state))
    if pruned:
        return EXIT_PRUNED
    return 2 if isinstance(exc, PatchTSTHPOError) else 1


def is_rank() -> bool:
    """This process is one rank of a run started by `run_ranks`."""
    return STATUS_ENV in os.environ


def gather(value: float) -> list[float]:
    """`value` of every rank, in rank order (one value outside a process group)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    values: list = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return [float(v) for v in values]
