"""Studies in an Optuna storage -> one tidy table of trials (one row per trial, any state)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import optuna
import pandas as pd

from patchtst_hpo.hpo.storage import open_storage
from patchtst_hpo.models.arch_grid import Arch

COLUMNS = [
    "study",
    "budget",
    "task",
    "cell",
    "number",
    "state",
    "value",
    "arch",
    "params",
    "d_model",
    "n_layers",
    "n_heads",
    "d_ff",
    "epochs",
    "best_epoch",
    "wall_seconds",
    "run_dir",
    "fail_reason",
]


def study_names(storage_url: str, prefix: str) -> list[str]:
    """Studies whose name is `prefix` or starts with `prefix.`."""
    names = optuna.get_all_study_names(open_storage(storage_url))
    return sorted(n for n in names if n == prefix or n.startswith(prefix + "."))


def _run_metrics(run_dir: str | None) -> dict:
    path = Path(run_dir or "") / "metrics.json"
    return json.loads(path.read_text()) if run_dir and path.exists() else {}


def trials_table(storage_url: str, names: list[str]) -> pd.DataFrame:
    """Every trial of the named studies with its arch, hyperparameters, state, objective and run folder."""
    rows = []
    storage = open_storage(storage_url)
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        attrs = study.user_attrs
        for t in study.get_trials(deepcopy=False):
            arch = t.params.get("arch")
            m = _run_metrics(t.user_attrs.get("run_dir"))
            row = {
                "study": name,
                "budget": attrs.get("budget"),
                "task": attrs.get("task"),
                "cell": json.dumps(attrs.get("grid", {}), sort_keys=True),
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "arch": arch,
                "params": t.user_attrs.get("params", attrs.get("arch_params", {}).get(arch)),
                **(asdict(Arch.from_name(arch)) if arch else {}),
                "epochs": m.get("epochs", t.user_attrs.get("epochs")),
                "best_epoch": m.get("best_epoch"),
                "wall_seconds": (t.datetime_complete - t.datetime_start).total_seconds()
                if t.datetime_complete and t.datetime_start
                else None,
                "run_dir": t.user_attrs.get("run_dir"),
                "fail_reason": t.user_attrs.get("fail_reason"),
            }
            row.update({f"hp.{k}": v for k, v in t.params.items() if k != "arch"})
            rows.append(row)
    df = pd.DataFrame(rows)
    return df.reindex(columns=[*COLUMNS, *sorted(c for c in df.columns if c not in COLUMNS)])
