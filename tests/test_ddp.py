"""Data-parallel training with several processes (trainer=ddp_cpu: 2 CPU ranks over gloo), run for real.

The ranks are started by the job itself (patchtst_hpo/ranks.py); these tests run the CLI in subprocesses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchtst_hpo.data.datamodule import ShardedShuffle
from tests.helpers import check, run_cli

# A short run without dropout: 1 and 2 processes then train on the same global batches with the same masks-free
# arithmetic, so their metrics agree to float rounding (dropout draws each rank's masks from its own stream).
TINY = [
    "-m",
    "patchtst_hpo.train",
    "budget=tiny",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "callbacks.progress.refresh_rate=0",
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


def test_two_processes_train_as_one(tmp_path, data_dir):
    """Same global batch (64 x 2 ranks vs 128), same seed: same samples, gradients and metrics; files written once.

    Both clip by value (trainer.gradient_clip_algorithm=value): each applied gradient entry is within the clip.
    """
    clip = ["trainer.gradient_clip_val=0.01", "trainer.gradient_clip_algorithm=value"]
    probe = ["+callbacks.grad_probe._target_=tests.grad_probe.GradProbe"]
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
        "+callbacks.grad_probe._target_=tests.grad_probe.GradProbe",
        f"+callbacks.grad_probe.folder={probe}",
    )
    steps = [json.loads((probe / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert steps[0] == steps[1] and len(steps[0]) == 3
    for s in steps[0]:
        assert s["norm"] == pytest.approx(0.5, rel=1e-4) and s["max_abs"] < 0.5
