import json

import pytest
import yaml

from patchtst_hpo.devices import TRAIN_BYTES_PER_PARAM, available_bytes
from patchtst_hpo.errors import ConfigError
from patchtst_hpo.train import train
from patchtst_hpo.validation import validate
from tests.helpers import run_cli

FAST = [
    "budget=tiny",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=5",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "callbacks.progress=null",
]


def test_app_runs_and_writes_outputs(tmp_path, data_dir):
    run = tmp_path / "run"
    r = run_cli(["-m", "patchtst_hpo.train", *FAST, f"paths.data_dir={data_dir}", f"hydra.run.dir={run}"])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    m = json.loads((run / "metrics.json").read_text())
    assert m["arch"] == "d64_l2_h4_f256" and m["budget"] == "tiny" and m["params"] == 117_569
    assert m["epochs"] == 2 and 0.0 <= m["val"]["auc"] <= 1.0 and m["objective"] == m["val"]["auc"]
    assert m["data"]["id"] == "SPX.OHLCV.daily.a25" and len(m["data"]["sha256"]) == 64
    assert set(m["data"]["splits"]) == {"train", "val", "test"}
    assert 0 < m["test"]["positive_rate"] < 1
    cfg = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    assert cfg["arch"]["name"] == "d64_l2_h4_f256"
    assert (run / "checkpoints" / "last.ckpt").exists() and m["best_checkpoint"].startswith(str(run))
    # resuming from last.ckpt is one override: it continues at epoch 2 and runs to max_epochs=3
    run2 = tmp_path / "run2"
    r = run_cli(
        [
            "-m",
            "patchtst_hpo.train",
            *FAST,
            "trainer.max_epochs=3",
            f"paths.data_dir={data_dir}",
            f"hydra.run.dir={run2}",
            f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
        ]
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert json.loads((run2 / "metrics.json").read_text())["epochs"] == 3


def test_basic_sweeper_multirun_over_two_archs(tmp_path, data_dir):
    sweep = tmp_path / "sweep"
    r = run_cli(
        [
            "-m",
            "patchtst_hpo.train",
            "-m",
            "hydra/sweeper=basic",
            *FAST,
            "trainer.max_epochs=1",
            "arch=d64_l2_h4_f256,d64_l3_h8_f128",
            f"paths.data_dir={data_dir}",
            f"hydra.sweep.dir={sweep}",
        ]
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    archs = {json.loads((sweep / str(i) / "metrics.json").read_text())["arch"] for i in (0, 1)}
    assert archs == {"d64_l2_h4_f256", "d64_l3_h8_f128"}


def test_same_seed_same_val_metrics(cfg_factory, data_dir, tmp_path):
    results = []
    for i in range(2):
        cfg = cfg_factory(
            *FAST,
            f"paths.data_dir={data_dir}",
            f"paths.output_dir={tmp_path / str(i)}",
            "logger=none",
            "callbacks.lr_monitor=null",
        )
        results.append(train(cfg))
    assert results[0]["val"] == results[1]["val"]
    assert results[0]["objective"] == results[1]["objective"]


@pytest.mark.parametrize(
    "override,key",
    [
        ("arch=d512_l6_h8_f2048", "budget=tiny"),
        ("arch.n_heads=3", "n_heads=3"),
        ("model.patch_len=100", "model.patch_len=100"),
        ("objective.metric=val/sharpe", "objective.metric"),
        ("data.tier=b99", "data.tier"),
    ],
)
def test_bad_overrides_fail_fast(tmp_path, data_dir, override, key):
    run = tmp_path / "run"
    r = run_cli(
        ["-m", "patchtst_hpo.train", *FAST, override, f"paths.data_dir={data_dir}", f"hydra.run.dir={run}"]
    )
    out = r.stdout + r.stderr
    assert r.returncode != 0 and key in out, out[-2000:]
    assert "Traceback" not in out
    assert not (run / "checkpoints").exists()


def test_shuffled_labels_give_chance_auc(cfg_factory, data_dir, tmp_path):
    cfg = cfg_factory(
        "budget=tiny",
        "task=h5_1pct",
        "data.shuffle_labels=true",
        "trainer.max_epochs=5",
        f"paths.data_dir={data_dir}",
        f"paths.output_dir={tmp_path}",
        "logger=none",
        "callbacks.lr_monitor=null",
        "callbacks.progress=null",
    )
    res = train(cfg)
    assert abs(res["val"]["auc"] - 0.5) <= 0.05, res["val"]


def test_model_too_large_for_memory_is_refused_before_allocating(cfg_factory):
    cfg = cfg_factory("budget=2B")  # d2048_l32_h32_f8192: 1,612,027,905 parameters
    need, have = 1_612_027_905 * TRAIN_BYTES_PER_PARAM, available_bytes("cpu")
    if have is None or have >= need:
        pytest.skip(f"this machine could hold the 2B training state ({have} bytes free)")
    with pytest.raises(ConfigError, match=r"needs about \d+\.\d GiB.*trainer=fsdp"):  # + activations
        validate(cfg)
    validate(cfg_factory("budget=tiny"))  # small models pass


def test_ddp_on_cpu_shards_the_training_windows(tmp_path, data_dir):
    run = tmp_path / "ddp"
    r = run_cli(
        [
            "-m",
            "patchtst_hpo.train",
            "budget=tiny",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.precision=32-true",
            "data.batch_size=128",  # trainer=gpu (under ddp) sets the budget's GPU batch size
            "trainer.max_epochs=1",
            "callbacks.progress.refresh_seconds=0",
            f"paths.data_dir={data_dir}",
            f"hydra.run.dir={run}",
        ]
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    m = json.loads((run / "metrics.json").read_text())
    per_rank = -(-m["data"]["splits"]["train"]["samples"] // 2)  # DistributedSampler pads to equal shards
    assert m["world_size"] == 2 and m["steps"] == -(-per_rank // 128)
