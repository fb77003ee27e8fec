"""The budget-aware Optuna sweeper: one study per grid cell, trials dispatched through Hydra's launcher.

Flow of `sweep()`: plan (grid / distributions) -> for each cell: compose its config, list the arch
candidates of its budget and data, open or create its study (checking the candidates did not change),
fail stale RUNNING trials of dead sweepers on this host, enqueue the shape extremes of a new study, then
ask -> launch -> tell in batches of `n_jobs` until `n_trials` trials have finished (COMPLETE or PRUNED).
See docs/hpo.md for the rules on failures, resume and concurrency.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import socket
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from patchtst_hpo.atomic import write_text
from patchtst_hpo.data.processed import dataset_id
from patchtst_hpo.errors import ConfigError, PatchTSTHPOError
from patchtst_hpo.hpo import search_space
from patchtst_hpo.hpo.storage import open_storage, storage_lock
from patchtst_hpo.models.arch_grid import budget_candidates, extremes

log = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
HOST = socket.gethostname()


class SweepAborted(PatchTSTHPOError):
    """The sweep stopped early because trials keep failing (the reason is in the message)."""


@dataclass
class Cell:
    """One grid cell = one study."""

    values: dict[str, Any]
    overrides: list[str]
    name: str
    cfg: DictConfig
    arch_names: list[str] = field(default_factory=list)
    extremes: list[str] = field(default_factory=list)
    params_by_arch: dict[str, int] = field(default_factory=dict)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reason(ret: JobReturn) -> tuple[optuna.trial.TrialState, float | None, str]:
    """(state, value, reason) of a finished job; never touches `ret.return_value` of a failed job."""
    if ret.status == JobStatus.COMPLETED:
        v = ret._return_value
        if isinstance(v, bool) or not isinstance(v, int | float):
            return optuna.trial.TrialState.FAIL, None, f"objective is {type(v).__name__}, not a number"
        if not math.isfinite(v):
            return optuna.trial.TrialState.FAIL, None, f"objective is {v}"
        return optuna.trial.TrialState.COMPLETE, float(v), ""
    exc = ret._return_value
    if isinstance(exc, optuna.TrialPruned):
        return optuna.trial.TrialState.PRUNED, None, str(exc)
    return optuna.trial.TrialState.FAIL, None, f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:2000]


class BudgetOptunaSweeperImpl:
    def __init__(
        self,
        study_name: str,
        storage: str,
        direction: str,
        metric: str,
        n_trials: int,
        n_jobs: int,
        seed: int,
        max_failure_rate: float,
        sampler: DictConfig,
        pruner: DictConfig,
        params: DictConfig | None,
    ) -> None:
        self.prefix, self.storage_url = study_name, storage
        self.direction, self.metric = direction, metric
        self.n_trials, self.n_jobs, self.seed = int(n_trials), max(int(n_jobs), 1), int(seed)
        self.max_failure_rate = float(max_failure_rate)
        self.sampler_cfg, self.pruner_cfg = sampler, pruner
        self.params = dict(params or {})
        self.job_idx = 0

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.sweep_dir = Path(config.hydra.sweep.dir)

    # ---- planning ----

    def _compose(self, overrides: Sequence[str]) -> DictConfig:
        loader = self.hydra_context.config_loader
        return loader.load_sweep_config(master_config=self.config, sweep_overrides=list(overrides))

    def _study_name(self, cfg: DictConfig, values: dict[str, Any]) -> str:
        extra = [f"{k}={v}" for k, v in values.items() if k not in ("budget", "task")]
        return ".".join([self.prefix, str(cfg.budget.name), str(cfg.task.name), *extra])

    def _cells(self, plan: search_space.SweepPlan) -> list[Cell]:
        searched_arch = (
            "arch" not in plan.grid
            and "arch" not in plan.space
            and not any(f.split("=")[0] == "arch" for f in plan.fixed)
        )
        cells = []
        for values in search_space.cells(plan.grid):
            overrides = [*plan.fixed, *(search_space.override(k, v) for k, v in values.items())]
            cfg = self._compose(overrides)
            cell = Cell(values, overrides, self._study_name(cfg, values), cfg)
            if searched_arch:
                cands = budget_candidates(cfg)  # ConfigError (nearest archs named) if the budget is empty
                cell.arch_names = [c.arch.name for c in cands]
                cell.params_by_arch = {c.arch.name: c.params for c in cands}
                cell.extremes = [c.arch.name for c in extremes(cands)]
            cells.append(cell)
        return cells

    # ---- studies ----

    def _sampler(self, study_name: str, n_existing: int) -> optuna.samplers.BaseSampler:
        # Seed from (seed, study, trials so far): a resumed run does not replay the first run's draws.
        seed = zlib.crc32(f"{self.seed}/{study_name}/{n_existing}".encode())
        return instantiate(self.sampler_cfg, seed=seed)

    def _open_study(self, cell: Cell, space: dict) -> optuna.Study:
        with storage_lock(self.storage_url):  # one process at a time creates, describes and seeds a study
            return self._open_study_locked(cell, space)

    def _open_study_locked(self, cell: Cell, space: dict) -> optuna.Study:
        storage = open_storage(self.storage_url, locked=True)
        study = optuna.create_study(
            study_name=cell.name, storage=storage, direction=self.direction, load_if_exists=True
        )
        n_existing = len(study.get_trials(deepcopy=False))
        study.sampler = self._sampler(cell.name, n_existing)
        attrs = study.user_attrs
        if "arch_candidates" in attrs and attrs["arch_candidates"] != cell.arch_names:
            raise ConfigError(
                f"study {cell.name!r} in {self.storage_url} was created with {len(attrs['arch_candidates'])} "
                f"arch candidates, but the composed budget/data/grid now give {len(cell.arch_names)}; Optuna "
                f"cannot change a categorical's choices. Use a new hydra.sweeper.study_name or delete the study"
            )
        if attrs.get("direction", self.direction) != self.direction:
            raise ConfigError(
                f"study {cell.name!r} optimises {attrs['direction']}, not {self.direction}; "
                f"use a new hydra.sweeper.study_name"
            )
        if "arch_candidates" not in attrs:
            d = cell.cfg.data
            info = {
                "grid": {k: str(v) for k, v in cell.values.items()},
                "budget": str(cell.cfg.budget.name),
                "task": str(cell.cfg.task.name),
                "data_id": dataset_id(d.ohlcv, d.tier, d.vix),
                "data_version": str(d.version),
                "arch_candidates": cell.arch_names,
                "arch_params": cell.params_by_arch,
                "metric": self.metric,
                "direction": self.direction,
                "pruner": OmegaConf.to_container(self.pruner_cfg, resolve=True),
                "search_space": {k: repr(v) for k, v in space.items()},
                "fixed_overrides": cell.overrides,
            }
            for k, v in info.items():
                study.set_user_attr(k, v)
            if n_existing == 0:
                for name in cell.extremes:  # the shape extremes first, so every study sees them
                    study.enqueue_trial(
                        {"arch": name}, user_attrs={"enqueued": "extreme"}, skip_if_exists=True
                    )
        return study

    def _fail_stale(self, study: optuna.Study) -> None:
        """RUNNING trials left by a sweeper on this host that no longer exists become FAIL."""
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            host, pid = t.user_attrs.get("sweeper_host"), t.user_attrs.get("sweeper_pid")
            if host == HOST and pid is not None and not _pid_alive(int(pid)):
                optuna.trial.Trial(study, t._trial_id).set_user_attr(
                    "fail_reason", f"stale: sweeper process {pid} on {host} died"
                )
                study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
                log.warning(
                    "%s: trial %d was left RUNNING by dead sweeper %s; marked FAIL",
                    study.study_name,
                    t.number,
                    pid,
                )

    # ---- the loop ----

    def _trial_overrides(self, cell: Cell, trial: optuna.trial.Trial, space: dict) -> list[str]:
        params = dict(space)
        if cell.arch_names:
            params["arch"] = optuna.distributions.CategoricalDistribution(cell.arch_names)
        chosen = {k: search_space.suggest(trial, k, dist) for k, dist in params.items()}
        trial.set_user_attr("sweeper_host", HOST)
        trial.set_user_attr("sweeper_pid", os.getpid())
        trial.set_user_attr("run_dir", str(self.sweep_dir / cell.name / str(trial.number)))
        if "arch" in chosen:
            trial.set_user_attr("params", cell.params_by_arch[chosen["arch"]])
        return [
            *cell.overrides,
            *(search_space.override(k, v) for k, v in chosen.items()),
            search_space.override("objective.metric", self.metric),
            search_space.override("objective.direction", self.direction),
            "test=false",  # trials never look at the test period; the report's confirmation does
            search_space.override("trial.storage", self.storage_url),
            search_space.override("trial.study", cell.name),
            f"trial.number={trial.number}",
            search_space.override("hydra.sweep.subdir", f"{cell.name}/{trial.number}"),
        ]

    def _run_study(self, cell: Cell, space: dict) -> optuna.Study:
        study = self._open_study(cell, space)
        self._fail_stale(study)
        # Exceptions of this run's trials, newest last ("" = no exception). Only raised errors count towards
        # "failed the same way": a NaN objective belongs to its hyperparameters, not to the set-up.
        recent: list[str] = []
        while True:
            trials = study.get_trials(deepcopy=False)
            finished = sum(t.state in FINISHED for t in trials)
            failed = sum(t.state == optuna.trial.TrialState.FAIL for t in trials)
            if finished >= self.n_trials:
                break
            if failed > self.max_failure_rate * self.n_trials:
                raise SweepAborted(
                    f"study {cell.name}: {failed} failed trials exceed max_failure_rate={self.max_failure_rate} "
                    f"x n_trials={self.n_trials}; see the trials' fail_reason attributes"
                )
            batch = [study.ask() for _ in range(min(self.n_jobs, self.n_trials - finished))]
            overrides = [self._trial_overrides(cell, t, space) for t in batch]
            log.info(
                "%s: launching trials %s (%d/%d finished)",
                cell.name,
                [t.number for t in batch],
                finished,
                self.n_trials,
            )
            returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            self.job_idx += len(batch)
            for trial, ret in zip(batch, returns, strict=True):
                state, value, reason = _reason(ret)
                if reason:
                    failed_now = state == optuna.trial.TrialState.FAIL
                    trial.set_user_attr("fail_reason" if failed_now else "prune_reason", reason)
                study.tell(trial, value if state == optuna.trial.TrialState.COMPLETE else None, state=state)
                log.info(
                    "%s trial %d: %s%s",
                    cell.name,
                    trial.number,
                    state.name,
                    f" {value:.5f}" if value is not None else f" ({reason})",
                )
                raised = ret.status != JobStatus.COMPLETED and state == optuna.trial.TrialState.FAIL
                recent.append(reason if raised else "")
            window = max(2, self.n_jobs)
            last = recent[-window:]
            if len(last) == window and last[0] and all(r == last[0] for r in last):
                raise SweepAborted(
                    f"study {cell.name}: the last {window} trials all failed the same way, so the "
                    f"rest would too: {last[0]}"
                )
        return study

    def sweep(self, arguments: list[str]) -> list[dict]:
        plan = search_space.plan(arguments, self.params)
        cells = self._cells(plan)
        log.info(
            "budget_optuna: %d studies x %d finished trials, storage %s, sweep dir %s",
            len(cells),
            self.n_trials,
            self.storage_url,
            self.sweep_dir,
        )
        if self.storage_url.startswith("sqlite:///"):
            Path(self.storage_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        rows = []
        try:
            for cell in cells:
                study = self._run_study(cell, plan.space)
                rows.append(self._summarise(cell, study))
        finally:
            if rows:
                self._write_table(rows)
        return rows

    # ---- summary ----

    def _summarise(self, cell: Cell, study: optuna.Study) -> dict:
        trials = study.get_trials(deepcopy=False)
        count = {s.name: sum(t.state == s for t in trials) for s in optuna.trial.TrialState}
        row: dict[str, Any] = {
            "study": cell.name,
            **{k: str(v) for k, v in cell.values.items()},
            "complete": count["COMPLETE"],
            "pruned": count["PRUNED"],
            "failed": count["FAIL"],
        }
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        result: dict[str, Any] = {
            "study": cell.name,
            "storage": self.storage_url,
            "metric": self.metric,
            "direction": self.direction,
            "trials": count,
        }
        if done:
            best = study.best_trial
            arch = best.params.get("arch", cell.cfg.arch.name)
            result.update(
                {
                    "best_value": best.value,
                    "best_trial": best.number,
                    "best_params": best.params,
                    "arch": arch,
                    "params": best.user_attrs.get("params"),
                    "run_dir": best.user_attrs.get("run_dir"),
                }
            )
            row.update(
                {
                    "best_value": round(best.value, 5),
                    "best_arch": arch,
                    "params": best.user_attrs.get("params"),
                    "best_trial": best.number,
                    "run_dir": best.user_attrs.get("run_dir"),
                }
            )
        out = self.sweep_dir / cell.name / "optimization_results.yaml"
        write_text(out, OmegaConf.to_yaml(OmegaConf.create(result)))
        return row

    def _write_table(self, rows: list[dict]) -> None:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.sweep_dir / "summary.csv", buf.getvalue())
        widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in keys if k != "run_dir"}
        lines = ["  ".join(k.ljust(w) for k, w in widths.items())]
        lines += ["  ".join(str(r.get(k, "")).ljust(w) for k, w in widths.items()) for r in rows]
        print("\n".join(lines))
        print(f"summary: {self.sweep_dir / 'summary.csv'}")
