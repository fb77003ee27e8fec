"""Storages that cannot be opened and settings that cannot work: one line naming the value and the fix, exit 2."""

from __future__ import annotations

import optuna
import pytest

from patchtst_hpo.config import compose
from patchtst_hpo.data.datamodule import WindowDataModule
from patchtst_hpo.errors import ConfigError
from patchtst_hpo.hpo.storage import open_storage
from tests.helpers import run_cli


def _truncated(tmp_path, keep: int | None) -> str:
    url = f"sqlite:///{tmp_path / 'full.db'}"
    study = optuna.create_study(study_name="a", storage=url)
    for i in range(30):
        study.enqueue_trial({"x": i})
    data = (tmp_path / "full.db").read_bytes()
    (tmp_path / "cut.db").write_bytes(data[: keep if keep is not None else len(data) // 2])
    return f"sqlite:///{tmp_path / 'cut.db'}"


@pytest.mark.parametrize(
    "url, words",
    [
        ("mysql://u@127.0.0.1/db", "driver is not installed"),
        ("notaurl", "not a storage URL"),
        ("nosuchdb://x@h/db", "not a storage URL"),
        ("half", "not an SQLite database (truncated or overwritten)"),
        ("head", "not an SQLite database"),
    ],
)
def test_storages_that_cannot_be_opened_are_one_line(tmp_path, url, words):
    if url in ("half", "head"):
        url = _truncated(tmp_path, None if url == "half" else 5000)
    with pytest.raises(ConfigError) as e:
        open_storage(url)
        optuna.get_all_study_names(open_storage(url))
    msg = str(e.value)
    assert msg.startswith("storage ") and words in msg and "\n" not in msg, msg


def test_report_and_sweep_cli_one_line_for_a_bad_storage(tmp_path, data_dir):
    for args in (
        ["-m", "patchtst_hpo.report", "storage=notaurl", f"hydra.run.dir={tmp_path / 'r'}"],
        [
            "-m",
            "patchtst_hpo.train",
            "-m",
            "budget=tiny",
            f"paths.data_dir={data_dir}",
            f"hydra.sweep.dir={tmp_path / 's'}",
            "hydra.sweeper.storage=mysql://u@127.0.0.1/db",
        ],
    ):
        r = run_cli(args)
        assert r.returncode == 2, r.stderr[-3000:]
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith("error: storage ") and "Traceback" not in r.stderr, r.stderr[-3000:]


def test_a_threshold_no_move_reaches_is_refused_before_training(data_dir):
    cfg = compose("train", ["budget=tiny", f"paths.data_dir={data_dir}", "task.threshold=-0.5"])
    dm = WindowDataModule(cfg.data, cfg.task, 0)
    with pytest.raises(ConfigError) as e:
        dm.setup()
    msg = str(e.value)
    assert msg.startswith("task.threshold=-0.5: every one of the") and "train labels is 1" in msg, msg
