"""What a researcher reads while a run goes: one line per event, progress that moves, nothing twice."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter

import pytest
import yaml

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.train import _summary, train
from patchtst_hpo.validation import validate
from tests.helpers import run_cli

TINY = ["budget=tiny", "trainer.max_epochs=2", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1"]
LOG_LINE = re.compile(r"^\[[\d\- :,]+\]\[([\w.]+)\]\[(\w+)\] - (.*)$")


def test_a_run_in_a_log_file_reads_one_line_per_event(tmp_path, data_dir):
    """Not a terminal (a pipe here, a log file or SLURM's .out in life): one line per epoch, no bar escapes,
    Lightning's lines once and without adverts, the config in the run folder, checkpoint names as best_epoch."""
    run = tmp_path / "run"
    r = run_cli(["-m", "patchtst_hpo.train", *TINY, f"paths.data_dir={data_dir}", f"hydra.run.dir={run}"])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert "\r" not in out and "\x1b" not in out  # no bar redraws or colour codes in a file
    messages = [m.group(3) for line in out.splitlines() if (m := LOG_LINE.match(line))]
    assert [m.split(":")[0] for m in messages if m.startswith("epoch ")] == ["epoch 1/2", "epoch 2/2"]
    assert re.search(
        r"epoch 2/2: 3 batches in [\d.]+ s \| train/loss [\d.]+ \| val/loss [\d.]+ \| val/auc", out
    )
    repeated = [m for m, n in Counter(messages).items() if n > 1]
    assert not repeated and "\nINFO: " not in "\n" + out, (
        repeated
    )  # Lightning's own handler printed each twice
    assert "litlogger" not in out and "Tip:" not in out
    assert "_target_" not in out and "max_epochs:" not in out  # the ~200-line config is not on the console
    resolved = yaml.safe_load((run / "resolved_config.yaml").read_text())
    assert resolved["budget"]["name"] == "tiny" and resolved["trainer"]["max_epochs"] == 2
    m = json.loads((run / "metrics.json").read_text())
    assert m["best_checkpoint"].endswith(f"epoch{m['best_epoch']:03d}.ckpt")  # both count epochs from 1
    assert "| test auc " in messages[-1]


def test_terminal_status_line_moves_and_epoch_lines_stay(cfg_factory, data_dir, tmp_path, capsys, caplog):
    """In a terminal the status line is redrawn in place (here at every batch: refresh_seconds is tiny) and
    cleared before each epoch line; refresh_seconds=0 draws nothing."""
    common = [*TINY, f"paths.data_dir={data_dir}", "logger=none", "test=false"]
    with caplog.at_level("INFO", logger="patchtst_hpo.progress"):
        train(cfg_factory(*common, "+callbacks.progress.terminal=true", "callbacks.progress.refresh_seconds=1e-9",
                          f"paths.output_dir={tmp_path / 'a'}"))  # fmt: skip
    drawn = capsys.readouterr().out
    statuses = [s for s in drawn.split("\r") if s.strip()]
    assert len(statuses) >= 2 * 3, drawn  # every training batch of both epochs (and the validation ones)
    assert any(s.startswith("epoch 1/2 batch 3/3 | ") and " it/s | " in s for s in statuses), statuses
    assert any(s.startswith("epoch 2/2 validating 1/1") for s in statuses), statuses
    said = [r.getMessage().split(":")[0] for r in caplog.records if r.name == "patchtst_hpo.progress"]
    assert said == ["epoch 1/2", "epoch 2/2"]
    caplog.clear()
    silent = [
        "callbacks.progress.refresh_seconds=0",
        "trainer.max_epochs=1",
        f"paths.output_dir={tmp_path / 'b'}",
    ]
    train(cfg_factory(*common, *silent))
    assert capsys.readouterr().out == "" and not [
        r for r in caplog.records if r.name == "patchtst_hpo.progress"
    ]


def test_last_line_shows_test_metrics_only_when_the_run_tested(cfg_factory):
    result = {
        "objective": 0.61,
        "val": {"auc": 0.61},
        "test": {},
        "params": 9,
        "epochs": 2,
        "wall_seconds": 1.0,
    }
    trial = _summary(cfg_factory("test=false"), result)
    assert trial == "val/auc = 0.6100 | val auc 0.6100 | 9 params | 2 epochs | 1.0s"  # no "test auc nan"
    single = _summary(cfg_factory(), {**result, "test": {"auc": 0.7}})
    assert "| test auc 0.7000 |" in single


@pytest.mark.skipif(
    any(importlib.util.find_spec(p) for p in ("tensorboard", "tensorboardX")),
    reason="TensorBoard is installed",
)
def test_tensorboard_without_the_extra_is_refused_before_training(cfg_factory):
    with pytest.raises(ConfigError, match=r"logger.tensorboard=.*pip install -e '\.\[tensorboard\]'"):
        validate(cfg_factory("logger=tensorboard"))
