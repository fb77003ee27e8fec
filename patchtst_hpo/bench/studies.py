"""Synthetic Optuna studies of thousands of finished trials, built in seconds (bench pruning section, tests).

The trials look like a sweep's: COMPLETE and PRUNED trials with params, the user attributes a trial gets
(run_dir, params, compute accounting), one intermediate value per epoch. SQLite is filled with bulk inserts
(`optuna_private.rdb_bulk_add_trials`); a journal is written through an in-memory journal backend and then
appended to the file in one go (public `BaseJournalBackend` API), so neither pays a per-trial commit or lock.
"""

from __future__ import annotations

import random
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.storages.journal import BaseJournalBackend, JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState, create_trial

from patchtst_hpo.hpo import optuna_private
from patchtst_hpo.hpo.job_trial import shared_storage

DISTRIBUTIONS = {
    "arch": CategoricalDistribution(["d64_l2_h4_f256", "d32_l4_h2_f128"]),
    "optimizer.lr": FloatDistribution(1e-4, 1e-3, log=True),
    "model.dropout": FloatDistribution(0.0, 0.3),
}


class _MemoryBackend(BaseJournalBackend):
    def __init__(self) -> None:
        self.logs: list[dict[str, Any]] = []

    def read_logs(self, log_number_from: int) -> list[dict[str, Any]]:
        return self.logs[log_number_from:]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self.logs.extend(logs)


def finished_trials(n: int, steps: int, seed: int = 0, pruned_every: int = 4) -> list[FrozenTrial]:
    """`n` finished trials: every `pruned_every`-th PRUNED after half the steps, the rest COMPLETE."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        pruned = pruned_every and i % pruned_every == pruned_every - 1
        curve = [0.5 + 0.3 * rng.random() * (1 - 0.5**s) for s in range(steps // 2 if pruned else steps)]
        params = {
            "arch": rng.choice(DISTRIBUTIONS["arch"].choices),
            "optimizer.lr": 10 ** rng.uniform(-4, -3),
            "model.dropout": rng.uniform(0, 0.3),
        }
        attrs = {"run_dir": f"/runs/s/{i}", "params": 117569, "train_flops": 1.2e12, "samples_seen": 34000}
        out.append(
            create_trial(
                state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
                value=None if pruned else curve[-1],
                params=params,
                distributions=DISTRIBUTIONS,
                user_attrs={**attrs, "epochs": len(curve)},
                intermediate_values=dict(enumerate(curve)),
            )
        )
    return out


def build(
    url: str, name: str, trials: list[FrozenTrial], user_attrs: dict[str, Any], direction: str = "maximize"
) -> None:
    """A new study `name` at `url` (sqlite:/// or journal:) holding `trials`."""
    if url.startswith("journal:"):
        backend = _MemoryBackend()
        study = optuna.create_study(study_name=name, storage=JournalStorage(backend), direction=direction)
        _describe(study, user_attrs)
        study.add_trials(trials)
        JournalFileBackend(url.removeprefix("journal:")).append_logs(backend.logs)
        return
    storage = shared_storage(url)
    study = optuna.create_study(study_name=name, storage=storage, direction=direction)
    _describe(study, user_attrs)
    optuna_private.rdb_bulk_add_trials(storage, optuna_private.study_id(study), trials)


def _describe(study: optuna.Study, user_attrs: dict[str, Any]) -> None:
    for k, v in user_attrs.items():
        study.set_user_attr(k, v)
