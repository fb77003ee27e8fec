"""Studies in an Optuna storage -> one tidy table of trials (one row per trial, any state)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import optuna
import pandas as pd
from optuna.storages import BaseStorage

from patchtst_hpo import trust
from patchtst_hpo.analysis.study_size import trial_kinds
from patchtst_hpo.models.arch_grid import Arch

log = logging.getLogger(__name__)

COLUMNS = [
    "study",
    "budget",
    "task",
    "data_id",
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
    "steps",
    "train_fraction",
    "train_windows",
    "samples_seen",
    "tokens_seen",
    "train_flops",
    "enqueued",
    "trial_kind",
    "wall_seconds",
    "run_dir",
    "fail_reason",
    "warnings",
]


def study_names(storage: BaseStorage, prefix: str) -> list[str]:
    """Studies whose name is `prefix` or starts with `prefix.` (`storage` is opened once by the report)."""
    names = optuna.get_all_study_names(storage)
    return sorted(n for n in names if n == prefix or n.startswith(prefix + "."))


def _run_metrics(run_dir: str | None, number: int, study: str) -> dict:
    """The trial's metrics.json (the run folder comes from the storage: `trust.check_run_dir`)."""
    if not run_dir:
        return {}
    path = Path(trust.check_run_dir(run_dir, number, f"study {study!r} trial {number}")) / "metrics.json"
    try:
        m = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError) as e:
        log.warning("%s: unreadable (%s); the trial's compute is left out", path, e)
        return {}
    return m if isinstance(m, dict) else {}


def _train_fraction(attrs: dict, params: dict, m: dict) -> float:
    """data.train_fraction of a trial: from its metrics.json, else its grid cell / params / fixed overrides."""
    if "train_fraction" in m.get("data", {}):
        return float(m["data"]["train_fraction"])
    for src in (attrs.get("grid", {}), params):
        if "data.train_fraction" in src:
            return float(src["data.train_fraction"])
    for o in attrs.get("fixed_overrides", []):
        if o.startswith("data.train_fraction="):
            return float(o.split("=", 1)[1])
    return 1.0


def _seen(m: dict, trial_attrs: dict) -> dict:
    """Training compute fields: recorded on the trial by its job, else read from its metrics.json."""
    data = m.get("data", {})
    windows = data.get("train_windows", data.get("splits", {}).get("train", {}).get("samples"))
    return {
        "train_windows": windows,
        **{k: trial_attrs.get(k, m.get(k)) for k in ("steps", "samples_seen", "tokens_seen", "train_flops")},
    }


def _hp_from(t: object) -> str | None:
    return f"{t.get('study')} trial {t.get('trial')}" if isinstance(t, dict) else None


def trials_table(storage: BaseStorage, names: list[str]) -> pd.DataFrame:
    """Every trial of the named studies with its arch, hyperparameters, state, objective, compute and run folder."""
    rows = []
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        attrs = study.user_attrs
        kinds = trial_kinds(study)
        for t in study.get_trials(deepcopy=False):
            arch = t.params.get("arch")
            m = _run_metrics(t.user_attrs.get("run_dir"), t.number, name)
            row = {
                "study": name,
                "budget": attrs.get("budget"),
                "task": attrs.get("task"),
                "data_id": attrs.get("data_id"),
                "cell": json.dumps(attrs.get("grid", {}), sort_keys=True),
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "arch": arch,
                "params": t.user_attrs.get("params", attrs.get("arch_params", {}).get(arch)),
                **(asdict(Arch.from_name(arch)) if arch else {}),
                "epochs": m.get("epochs", t.user_attrs.get("epochs")),
                "best_epoch": m.get("best_epoch"),
                "train_fraction": _train_fraction(attrs, t.params, m),
                **_seen(m, t.user_attrs),
                "enqueued": t.user_attrs.get("enqueued"),
                "hp_from": _hp_from(
                    attrs.get("transfer_from")
                ),  # hydra.sweeper.transfer_from (hpo/transfer.py)
                "trial_kind": kinds[t.number],
                "wall_seconds": (t.datetime_complete - t.datetime_start).total_seconds()
                if t.datetime_complete and t.datetime_start
                else None,
                "run_dir": t.user_attrs.get("run_dir"),
                "fail_reason": t.user_attrs.get("fail_reason"),
                "warnings": "; ".join(m.get("warnings", [])) or None,
            }
            row.update({f"hp.{k}": v for k, v in t.params.items() if k != "arch"})
            rows.append(row)
    df = pd.DataFrame(rows)
    return df.reindex(columns=[*COLUMNS, *sorted(c for c in df.columns if c not in COLUMNS)])
