"""Data-parallel training with several processes (trainer=ddp_cpu: 2 CPU ranks over gloo), run for real.

The ranks are started by the job itself (patchtst_hpo/ranks.py); these tests run the CLI in subprocesses.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from patchtst_hpo import devices, ranks
from patchtst_hpo.data.datamodule import ShardedShuffle
from patchtst_hpo.errors import ConfigError, RunFailed
from patchtst_hpo.models.arch_grid import arch_from_cfg, count_params, dims_from_cfg
from patchtst_hpo.validation import validate
from tests.helpers import PY, check, run_cli, sqlite_storage, sweep_args

State = optuna.trial.TrialState

# A short run without dropout: 1 and 2 processes then train on the same global batches with the same masks-free
# arithmetic, so their metrics agree to float rounding (dropout draws each rank's masks from its own stream).
TINY = [
    "-m",
    "patchtst_hpo.train",
    "budget=tiny",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "callbacks.progress.refresh_seconds=0",
    "model.dropout=0",
    "model.attn_dropout=0",
    "model.head_dropout=0",
]
TOLERANCE = 1e-5  # |1-process - 2-process| of every val/test metric (measured: <= 3e-9 in log loss)


def _run(tmp_path: Path, data_dir: Path, name: str, *extra: str) -> tuple[dict, Path]:
    run = tmp_path / name
    r = run_cli([*TINY, f"paths.data_dir={data_dir}", f"hydra.run.dir={run}", *extra])
    check(r)
    return json.loads((run / "metrics.json").read_text()), run


def test_ranks_share_out_one_process_batches():
    """W ranks with batch B/W make exactly the global batches one process makes with batch B, every epoch."""
    n, b, w = 103, 8, 2
    for epoch in (0, 3):
        one = ShardedShuffle(n, seed=7)
        one.set_epoch(epoch)
        ranks = [ShardedShuffle(n, seed=7, rank=r, world=w) for r in range(w)]
        for s in ranks:
            s.set_epoch(epoch)
        single, shards = list(one), [list(s) for s in ranks]
        assert sorted(single) == list(range(n)) and len(shards[0]) == len(shards[1]) == 52  # 1 padded
        for k in range(n // b):
            together = sorted(i for s in shards for i in s[k * b // w : (k + 1) * b // w])
            assert together == sorted(single[k * b : (k + 1) * b])
    a, c = ShardedShuffle(n, seed=7), ShardedShuffle(n, seed=7)
    c.set_epoch(1)
    assert list(a) != list(c) and list(a) == list(ShardedShuffle(n, seed=7))  # per epoch, not per history


def test_who_starts_the_ranks(cfg_factory):
    """The job starts W > 1 ranks itself unless a scheduler made one process per rank already."""
    cfg = cfg_factory("trainer=ddp_cpu")
    assert devices.world_size(cfg) == 2 and ranks.needs_ranks(cfg, env={})
    assert not ranks.needs_ranks(cfg, env={"LOCAL_RANK": "0"})  # torchrun, or a rank we started
    assert not ranks.needs_ranks(cfg, env={"SLURM_NTASKS": "2"})  # srun with one task per rank
    assert ranks.needs_ranks(cfg, env={"SLURM_NTASKS": "1"})  # one task per node: it starts the node's ranks
    assert not ranks.needs_ranks(cfg_factory("trainer=cpu"), env={})
    assert not ranks.needs_ranks(cfg_factory("trainer=ddp_cpu", "trainer.strategy=ddp_spawn"), env={})
    two_nodes = cfg_factory("trainer=ddp_cpu", "trainer.num_nodes=2")
    with pytest.raises(ConfigError, match="trainer.num_nodes=2: the nodes cannot find each other"):
        ranks.rendezvous(two_nodes, env={})
    env = {
        "SLURM_NODEID": "1",
        "SLURM_JOB_NODELIST": "gpu[07-08]",
        "SLURM_JOB_ID": "123456",
        "SLURM_NNODES": "2",
    }
    assert ranks.rendezvous(two_nodes, env) == (1, "gpu07", 15000 + 3456)


def test_a_dead_rank_stops_the_others_after_the_grace(tmp_path):
    """Real processes: rank 1 dies of SIGKILL, rank 0 would wait forever; it is killed after the grace period
    and the run fails with one line naming rank 1."""
    import subprocess
    import time

    wait = [PY, "-c", "import time; time.sleep(120)"]
    die = [PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    procs = {
        0: subprocess.Popen(wait, start_new_session=True),
        1: subprocess.Popen(die, start_new_session=True),
    }
    t0 = time.monotonic()
    codes = ranks._wait(procs, grace=1.0)
    assert time.monotonic() - t0 < 30 and codes[0][0] == codes[1][0] == -9 and codes[1][1] < codes[0][1]
    with pytest.raises(RunFailed, match=r"^rank 1 of 2 died of SIGKILL; then rank 0 stopped \(logs: "):
        ranks._outcome(codes, tmp_path, tmp_path, 2, 0)


def test_two_processes_train_as_one(tmp_path, data_dir):
    """Same global batch (64 x 2 ranks vs 128), same seed: same samples, gradients and metrics; files written once.

    Both clip by value (trainer.gradient_clip_algorithm=value): each applied gradient entry is within the clip.
    """
    clip = ["trainer.gradient_clip_val=0.01", "trainer.gradient_clip_algorithm=value"]
    probe = ["+callbacks.grad_probe._target_=tests.rank_probes.GradProbe"]
    one, run1 = _run(
        tmp_path,
        data_dir,
        "one",
        "data.batch_size=128",
        *clip,
        *probe,
        f"+callbacks.grad_probe.folder={tmp_path / 'g1'}",
    )
    two, run2 = _run(
        tmp_path,
        data_dir,
        "two",
        "trainer=ddp_cpu",
        "data.batch_size=64",
        *clip,
        *probe,
        f"+callbacks.grad_probe.folder={tmp_path / 'g2'}",
    )
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert one["samples_seen"] == two["samples_seen"] == 2 * 3 * 128 and one["steps"] == two["steps"] == 6
    for split in ("val", "test"):
        assert two[split]["n"] == two["data"]["splits"][split]["samples"]  # every rank saw the whole split
        for k, v in one[split].items():
            assert abs(v - two[split][k]) <= TOLERANCE, (split, k, v, two[split][k])
    # the objective is the same on every rank (each computed on the full val set), and is what the job returns
    assert two["objective_by_rank"] == [two["objective"]] * 2
    grads = [
        json.loads(p.read_text())
        for p in (tmp_path / "g1/rank0.json", tmp_path / "g2/rank0.json", tmp_path / "g2/rank1.json")
    ]
    assert grads[1] == grads[2] and len(grads[0]) == len(grads[1]) == 6  # all-reduced: the same on both ranks
    for s1, s2 in zip(grads[0], grads[1], strict=True):
        assert s1["max_abs"] <= 0.01 * (1 + 1e-6) and s2["max_abs"] <= 0.01 * (1 + 1e-6) < s2["norm"]
        assert s2["norm"] == pytest.approx(s1["norm"], rel=1e-4)  # the same gradient as one process
    # rank 0 alone writes the run's files: the same files as the 1-process run, plus the ranks' own logs
    files = lambda run: sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())  # noqa: E731
    extra = set(files(run2)) - set(files(run1))
    assert extra == {"rank0.log", "rank1.log", "ranks/rank1.out", "ranks/rank_config.yaml"}, extra
    assert len(list((run2 / "checkpoints").glob("*.ckpt"))) == len(
        list((run1 / "checkpoints").glob("*.ckpt"))
    )


@pytest.mark.slow
def test_norm_clipping_on_ddp(tmp_path, data_dir):
    """trainer.gradient_clip_algorithm=norm (and null) bounds the total norm of the all-reduced gradients."""
    probe = tmp_path / "probe"
    _run(
        tmp_path,
        data_dir,
        "norm",
        "trainer=ddp_cpu",
        "trainer.max_epochs=1",
        "test=false",
        "trainer.gradient_clip_val=0.5",
        "+callbacks.grad_probe._target_=tests.rank_probes.GradProbe",
        f"+callbacks.grad_probe.folder={probe}",
    )
    steps = [json.loads((probe / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert steps[0] == steps[1] and len(steps[0]) == 3
    for s in steps[0]:
        assert s["norm"] == pytest.approx(0.5, rel=1e-4) and s["max_abs"] < 0.5


def _trials(storage: str, study: str = "s.tiny.h1_1pct"):
    import optuna

    return sorted(optuna.load_study(study_name=study, storage=storage).get_trials(), key=lambda t: t.number)


def _check_ddp_trials(sweep: Path, ts, output: str, n_ranks: int = 2) -> None:
    """Each complete trial: trained by `n_ranks` processes, one report per epoch (from rank 0), one result."""
    for t in ts:
        run = sweep / "s.tiny.h1_1pct" / str(t.number)
        m = json.loads((run / "metrics.json").read_text())
        assert m["world_size"] == n_ranks and m["objective_by_rank"] == [t.value] * n_ranks
        assert sorted(t.intermediate_values) == [0, 1]
        logs = "".join(p.read_text(errors="replace") for p in [*run.glob("*.log"), *run.glob("ranks/*.out")])
        assert (
            "already reported" not in logs
        )  # a second rank reporting the same epoch would be ignored, loudly


# in the default suite (~25 s): the key behaviour must run in CI
def test_sweep_of_two_process_trials_goes_on_when_a_rank_is_killed(tmp_path, data_dir):
    """Basic launcher: trial 0's rank 1 dies of SIGKILL mid-epoch -> trial 0 FAIL with the reason in one line, in
    seconds (rank 0 is not left waiting); the sweep goes on and its 2 trials complete, each a 2-process run."""
    sweep, storage = tmp_path / "sweep", sqlite_storage(tmp_path)
    r = run_cli(
        sweep_args(
            sweep,
            data_dir,
            storage,
            "budget=tiny",
            "trainer=ddp_cpu",
            "trainer.rank_grace_seconds=5",
            "hydra.sweeper.n_trials=2",
            "+callbacks.stop._target_=tests.rank_probes.StopRank",
            "+callbacks.stop.rank=1",
            "+callbacks.stop.trial=${trial.number}",
        ),
        timeout=400,
    )
    check(r)
    ts = _trials(storage)
    assert [t.state for t in ts] == [State.FAIL, State.COMPLETE, State.COMPLETE]
    reason = ts[0].user_attrs["fail_reason"]
    assert reason.startswith("RunFailed: rank 1 of 2 died of SIGKILL; then rank 0 stopped (logs: ")
    assert "\n" not in reason and (ts[0].datetime_complete - ts[0].datetime_start).total_seconds() < 120
    _check_ddp_trials(sweep, ts[1:], r.stdout + r.stderr)


@pytest.mark.slow
def test_slurm_sweep_of_two_process_trials(tmp_path, data_dir, slurm):
    """submitit on the one-node SLURM: each trial is one job task that starts its 2 CPU ranks (tasks_per_node=1);
    trial 0's rank 1 dies of SIGKILL: that trial FAILs with the reason (the job itself ends normally, so submitit
    raises nothing in the sweeper) and the sweep goes on to 2 complete trials."""
    sweep, storage = tmp_path / "sweep", sqlite_storage(tmp_path)
    r = run_cli(
        sweep_args(
            sweep,
            data_dir,
            storage,
            "budget=tiny",
            "trainer=ddp_cpu",
            "hydra/launcher=submitit_slurm",
            f"hydra.launcher.partition={slurm.partition}",
            "hydra.launcher.timeout_min=10",
            "hydra.sweeper.n_jobs=1",
            "hydra.sweeper.n_trials=2",
            "trainer.rank_grace_seconds=5",
            "+callbacks.stop._target_=tests.rank_probes.StopRank",
            "+callbacks.stop.rank=1",
            "+callbacks.stop.trial=${trial.number}",
        ),
        env=slurm.env,
        timeout=600,
    )
    check(r)
    ts = _trials(storage)
    assert [t.state for t in ts] == [State.FAIL, State.COMPLETE, State.COMPLETE]
    assert (
        ts[0]
        .user_attrs["fail_reason"]
        .startswith("RunFailed: rank 1 of 2 died of SIGKILL; then rank 0 stopped")
    )
    assert len(list((sweep / ".submitit").iterdir())) >= 3  # each trial ran as a SLURM job
    _check_ddp_trials(sweep, ts[1:], r.stdout + r.stderr)


@pytest.mark.parametrize("trainer", ["ddp", "fsdp", "ddp_cpu"])
def test_multi_process_trainers_leave_the_sharding_to_the_datamodule(cfg_factory, trainer):
    """Lightning's distributed sampler would shard the (already sharded) training windows and the val/test sets."""
    t = cfg_factory(f"trainer={trainer}").trainer
    assert t.use_distributed_sampler is False and t.strategy.timeout.seconds > 0
    assert (
        "FSDPStrategy" in t.strategy._target_ if trainer == "fsdp" else "DDPStrategy" in t.strategy._target_
    )


def test_fsdp_memory_per_rank_shards_the_state(cfg_factory):
    """2B under FSDP: each rank holds 1/W of the 16 bytes per parameter of fp32 state (bf16-mixed); the rest
    (gathered layers, this rank's activations, the allowance) does not shrink with W."""
    cfg = cfg_factory("budget=2B", "trainer=fsdp")
    arch, dims = arch_from_cfg(cfg), dims_from_cfg(cfg)
    n, batch = count_params(arch, dims), int(cfg.data.batch_size)
    est = {w: devices.fsdp_training_bytes(arch, dims, batch, "bf16-mixed", w) for w in (2, 4, 8)}
    for w, e in est.items():
        assert e["sharded"] == -(-n * 16 // w)
        assert (
            e["total"] == e["sharded"] + est[2]["gathered"] + est[2]["activations"] + devices.RESERVED_BYTES
        )
    assert est[2]["total"] > est[4]["total"] > est[8]["total"]
    assert est[8]["total"] < devices.training_bytes(arch, dims, batch, "bf16-mixed")  # less than unsharded
    # one encoder layer of the 2B arch: 4 d^2 + 2 d f + 9 d + f, gathered twice (current + prefetched), bf16
    assert devices.layer_params(arch) == 4 * 2048**2 + 2 * 2048 * 8192 + 9 * 2048 + 8192


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["trainer=ddp"],
            r"^trainer.accelerator=gpu: this machine has no CUDA GPU; use trainer=cpu, or trainer=ddp_cpu",
        ),
        (
            ["trainer=fsdp", "trainer.accelerator=cpu"],
            r"^trainer.strategy=FSDPStrategy: FSDP .* cannot run on CPU "
            r"\(nor autocast trainer.precision=bf16-mixed there\)",
        ),
        (
            ["trainer.precision=16-mixed", "optimizer.fused=false"],
            r"^trainer.precision=16-mixed: fp16 autocast needs a GPU",
        ),
        (
            ["trainer=ddp_cpu", "trainer.devices=64"],
            r"^trainer.devices=64: 64 CPU training processes on the \d+ cores",
        ),
        (
            ["trainer=ddp_cpu", "trainer.use_distributed_sampler=true"],
            r"^trainer.use_distributed_sampler=True: the Data",
        ),
        (
            ["trainer.gradient_clip_algorithm=max"],
            r"^trainer.gradient_clip_algorithm=max: use norm, value or null",
        ),
    ],
)
def test_what_cannot_run_here_is_refused_in_one_line(cfg_factory, overrides, message):
    if torch_cuda() and overrides[0] in ("trainer=ddp",):
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match=message):
        validate(cfg_factory("budget=tiny", *overrides))


def test_a_cpu_impossible_combination_is_refused_before_the_run_folder(tmp_path, data_dir):
    run = tmp_path / "run"
    r = run_cli(
        [
            "-m",
            "patchtst_hpo.train",
            "budget=tiny",
            "trainer=fsdp",
            "trainer.accelerator=cpu",
            f"paths.data_dir={data_dir}",
            f"hydra.run.dir={run}",
        ]
    )
    assert r.returncode == 2 and not run.exists()
    assert r.stderr.strip().splitlines()[-1].startswith("error: trainer.strategy=FSDPStrategy: FSDP shards")


def torch_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.slow
def test_a_hung_rank_fails_the_run_after_the_timeout(tmp_path, data_dir):
    """Rank 1 hangs (SIGSTOP) mid-epoch: rank 0's collective times out (trainer.strategy.timeout), the hung rank
    is killed after the grace, and the run exits 1 with one line; nothing waits forever."""
    run = tmp_path / "run"
    r = run_cli(
        [
            *TINY,
            "trainer=ddp_cpu",
            "trainer.strategy.timeout.seconds=10",
            "trainer.rank_grace_seconds=5",
            "+callbacks.stop._target_=tests.rank_probes.StopRank",
            "+callbacks.stop.rank=1",
            "+callbacks.stop.trial=0",
            "+callbacks.stop.sig=STOP",
            f"paths.data_dir={data_dir}",
            f"hydra.run.dir={run}",
        ],
        timeout=300,
    )
    assert r.returncode == 1, r.stderr[-3000:]
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("error: rank 0 of 2 failed: ") and line.endswith(
        f"then rank 1 stopped (logs: {run}/ranks)"
    )
    assert not (run / "metrics.json").exists()
