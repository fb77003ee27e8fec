"""Studies -> (task, data) groups: baselines, winners and fits are never pooled across tasks or datasets."""

from __future__ import annotations

import re
from dataclasses import dataclass

import optuna
import pandas as pd
from optuna.storages import BaseStorage


@dataclass
class Group:
    task: str
    data_id: str
    studies: list[str]
    attrs: dict[str, dict]  # study name -> its user attrs (fixed_overrides, metric, direction, ...)
    trials: pd.DataFrame

    @property
    def key(self) -> str:
        """A folder-safe name, e.g. `h1_1pct.SPX.OHLCV.daily.a25`."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.task}.{self.data_id}")

    @property
    def first(self) -> dict:
        return self.attrs[self.studies[0]]


def split(storage: BaseStorage, names: list[str], trials: pd.DataFrame) -> list[Group]:
    """One Group per (task, data_id) over the named studies, in name order."""
    out: dict[tuple[str, str], Group] = {}
    for name in names:
        attrs = optuna.load_study(study_name=name, storage=storage).user_attrs
        k = (str(attrs.get("task", "?")), str(attrs.get("data_id", "?")))
        if k not in out:
            out[k] = Group(k[0], k[1], [], {}, trials.iloc[0:0])
        out[k].studies.append(name)
        out[k].attrs[name] = attrs
    for g in out.values():
        g.trials = trials[trials["study"].isin(g.studies)]
    return list(out.values())


def search_warnings(g: Group) -> list[str]:
    """Studies whose finished trials are only the enqueued shape extremes: no search happened there."""
    out = []
    for name in g.studies:
        t = g.trials[(g.trials["study"] == name) & g.trials["state"].isin(["COMPLETE", "PRUNED"])]
        n_extremes = int((g.trials[g.trials["study"] == name]["enqueued"] == "extreme").sum())
        if n_extremes and len(t) <= n_extremes:
            out.append(
                f"{name}: {len(t)} finished trials <= {n_extremes} enqueued shape extremes: no search happened "
                f"(raise hydra.sweeper.n_trials)"
            )
    return out
