"""The budget-aware Optuna sweeper: one study per grid cell, trials dispatched through Hydra's launcher.

Flow of `sweep()`: plan (grid / distributions) -> for each cell: compose its config, list the arch
candidates of its budget and data, open or create its study (checking the candidates did not change),
enqueue the shape extremes of a study this process created, then fail the RUNNING trials whose sweeper
is gone (no heartbeat) and queue them again, and ask -> launch (with heartbeats) -> tell in batches of `n_jobs` until `n_trials` trials have finished (COMPLETE or PRUNED).
See docs/hpo.md for the rules on failures, resume and concurrency.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import os
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from patchtst_hpo.atomic import write_text
from patchtst_hpo.errors import ConfigError, PatchTSTHPOError
from patchtst_hpo.hpo import identity, optuna_private, pruners, search_space
from patchtst_hpo.hpo.storage import (
    HOST,
    fail_stale_trials,
    failed_count,
    open_storage,
    split_password,
    storage_lock,
)

log = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


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


def _plain(v: Any) -> Any:
    """A config node as plain Python (lists and dicts), anything else unchanged."""
    return OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v


def _number(v: Any) -> str | None:
    """Why `v` is not a finite objective value (None when it is one)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return f"{type(v).__name__}, not a number"
    return None if math.isfinite(v) else str(v)


def _reason(ret: JobReturn, n_objectives: int = 1) -> tuple[optuna.trial.TrialState, list[float] | None, str]:
    """(state, values, reason) of a finished job; never touches `ret.return_value` of a failed job.

    One objective: the task returns a number. Several: a sequence of that many numbers (one per direction).
    """
    State = optuna.trial.TrialState
    if ret.status == JobStatus.COMPLETED:
        v = optuna_private.job_value(ret)
        if n_objectives == 1:
            vs = [v]
        elif isinstance(v, Sequence) and not isinstance(v, str) and len(v) == n_objectives:
            vs = list(v)
        else:
            return State.FAIL, None, f"objective is {v!r}, not a sequence of {n_objectives} numbers"
        why = next((w for x in vs if (w := _number(x))), None)
        if why:
            return State.FAIL, None, f"objective is {why}"
        return State.COMPLETE, [float(x) for x in vs], ""
    exc = optuna_private.job_value(ret)
    if isinstance(exc, optuna.TrialPruned):
        return State.PRUNED, None, str(exc)
    return State.FAIL, None, f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:2000]


class BudgetOptunaSweeperImpl:
    def __init__(
        self,
        sampler: DictConfig,
        study_name: Any = None,
        storage: str | None = None,
        direction: Any = "minimize",
        metric: Any = None,
        n_trials: int = 20,
        n_jobs: int = 1,
        seed: int | None = None,
        max_failure_rate: float = 0.0,
        pruner: DictConfig | None = None,
        params: DictConfig | None = None,
        custom_search_space: str | None = None,
        heartbeat_interval: int = 10,
        grace_period: int = 30,
        max_retry: int = 3,
    ) -> None:
        # storage_url (with its password) stays in this process; jobs, logs and files get public_url and
        # read the password from PGPASSWORD / ~/.pgpass (docs/hpo.md "Secrets").
        self.prefix = None if study_name is None else str(study_name)  # a number is a fine name
        self.storage_url = None if storage is None else str(storage)
        self.public_url, self.password = split_password(storage) if storage else ("in-memory", None)
        self._memory = optuna.storages.InMemoryStorage() if storage is None else None
        self.heartbeat = {
            "heartbeat_interval": int(heartbeat_interval),
            "grace_period": int(grace_period),
            "max_retry": int(max_retry),
        }
        if (
            self.heartbeat["heartbeat_interval"] < 1
            or self.heartbeat["grace_period"] <= self.heartbeat["heartbeat_interval"]
        ):
            raise ConfigError(
                f"hydra.sweeper.heartbeat_interval={heartbeat_interval}, grace_period={grace_period}: need "
                f"1 <= heartbeat_interval < grace_period (seconds), e.g. 10 and 30"
            )
        self.direction, self.metric = _plain(direction), _plain(metric)
        self.directions = [
            str(d) for d in (self.direction if isinstance(self.direction, list) else [self.direction])
        ]
        if not self.directions or any(d not in ("minimize", "maximize") for d in self.directions):
            raise ConfigError(
                f"hydra.sweeper.direction={self.direction!r}: use minimize, maximize or a list of them"
            )
        self.n_trials, self.n_jobs = int(n_trials), max(int(n_jobs), 1)
        sampler_seed = sampler.get("seed") if sampler is not None else None
        self.seed = None if (s := sampler_seed if sampler_seed is not None else seed) is None else int(s)
        self.max_failure_rate = float(max_failure_rate)
        if not self.max_failure_rate >= 0.0:
            raise ConfigError(f"hydra.sweeper.max_failure_rate={max_failure_rate}: use a fraction >= 0")
        self.sampler_cfg = sampler
        self.pruner_spec = pruners.spec_from_config(_plain(pruner))
        if len(self.directions) > 1 and self.pruner_spec["name"] != "NopPruner":
            raise ConfigError(
                f"hydra.sweeper.pruner={self.pruner_spec['name']}: Optuna cannot prune multi-objective studies "
                f"(direction={self.directions}); use hydra/sweeper/pruner=none"
            )
        self.custom_search_space = get_method(custom_search_space) if custom_search_space else None
        self.params = dict(params or {})
        self._grid_space: dict[str, list] | None = None
        self.job_idx = 0
        self._seeded: set[str] = set()

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.sweep_dir = Path(config.hydra.sweep.dir)
        # The budget/architecture extension is on only in apps with budget and grid groups (this project);
        # anywhere else this is a plain Optuna sweeper.
        choices = config.hydra.runtime.choices
        self.budget_mode = "budget" in choices and "grid" in choices
        if self.password is not None:
            self._hide_password(config)

    def _hide_password(self, config: DictConfig) -> None:
        """Jobs compose their config from the master's `hydra.overrides.hydra` (and Hydra writes it to
        multirun.yaml and every job's .hydra/): replace the storage there by the URL without password, and
        hand the password to jobs through the environment, which joblib workers and SLURM jobs inherit."""
        os.environ["PGPASSWORD"] = self.password
        hydra_overrides = [
            o
            for o in config.hydra.overrides.hydra
            if not str(o).lstrip("+~").startswith("hydra.sweeper.storage=")
        ]
        hydra_overrides.append(search_space.override("hydra.sweeper.storage", self.public_url))
        with read_write(config), open_dict(config):
            config.hydra.overrides.hydra = hydra_overrides
            config.hydra.sweeper.storage = self.public_url

    # ---- planning ----

    def _compose(self, overrides: Sequence[str]) -> DictConfig:
        loader = self.hydra_context.config_loader
        return loader.load_sweep_config(master_config=self.config, sweep_overrides=list(overrides))

    def _study_name(self, cfg: DictConfig, values: dict[str, Any]) -> str:
        extra = [f"{k}={v}" for k, v in values.items() if k not in ("budget", "task")]
        prefix = [self.prefix] if self.prefix is not None else []
        return ".".join([*prefix, str(cfg.budget.name), str(cfg.task.name), *extra])

    def _cells(self, plan: search_space.SweepPlan) -> list[Cell]:
        if not self.budget_mode:  # one study, named as configured (None: Optuna picks a name)
            return [Cell({}, list(plan.fixed), self.prefix, self.config)]
        from patchtst_hpo.models.arch_grid import budget_candidates, extremes  # budget apps only

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

    def _sampler(self, study_name: str, first_number: int) -> optuna.samplers.BaseSampler:
        # Seed from (seed, study, number of the first trial this process asks): trial numbers are unique
        # in the storage, so sweepers started together draw differently, a resumed run does not replay the
        # first run's draws, and a fresh single sweeper (first number 0) is reproducible.
        seed = None if self.seed is None else zlib.crc32(f"{self.seed}/{study_name}/{first_number}".encode())
        return self._build_sampler(seed)

    def _build_sampler(self, derived_seed: int) -> optuna.samplers.BaseSampler:
        """The configured sampler, seeded with `derived_seed` when a seed is set (else unseeded); the grid
        sampler gets the study's whole discrete search space."""
        cfg = OmegaConf.to_container(self.sampler_cfg, resolve=True)
        cfg.pop("_partial_", None)  # upstream's grid preset is partial; here the sweeper passes the grid
        kwargs: dict[str, Any] = {"seed": derived_seed if self.seed is not None else None}
        if cfg.get("_target_") == "optuna.samplers.GridSampler":
            kwargs["search_space"] = self._grid_space
        return instantiate(cfg, **kwargs)

    def _ask(self, study: optuna.Study) -> optuna.trial.Trial:
        """`study.ask()` in two steps: take a queued trial or create one and record its heartbeat at once
        (a trial without heartbeat is recovered only after the grace period), then build the Trial (which
        samples) with this process's sampler, seeded on its first trial."""
        storage = optuna_private.storage(study)
        trial_id = optuna_private.pop_waiting_trial_id(study)
        if trial_id is None:
            trial_id = storage.create_new_trial(optuna_private.study_id(study))
        if optuna_private.heartbeat_enabled(storage):  # every storage but in-memory
            storage.record_heartbeat(trial_id)
        storage.set_trial_user_attr(trial_id, "sweeper_host", HOST)  # same-host fast path of recovery
        storage.set_trial_user_attr(trial_id, "sweeper_pid", os.getpid())
        if study.study_name not in self._seeded:
            study.sampler = self._sampler(study.study_name, storage.get_trial_number_from_id(trial_id))
            self._seeded.add(study.study_name)
        return optuna.trial.Trial(study, trial_id)

    def _open_study(self, cell: Cell, space: dict) -> optuna.Study:
        lock = storage_lock(self.storage_url) if self.storage_url else contextlib.nullcontext()
        with lock:  # one process at a time creates, describes and seeds a study
            return self._open_study_locked(cell, space)

    def _open_study_locked(self, cell: Cell, space: dict) -> optuna.Study:
        storage = self._memory or open_storage(self.storage_url, locked=True, **self.heartbeat)
        # Exactly one process creates a study (the others get DuplicatedStudyError and load it): only the
        # creator describes it and enqueues the shape extremes, so each extreme is queued once.
        try:
            study = optuna.create_study(study_name=cell.name, storage=storage, directions=self.directions)
            created = True
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(study_name=cell.name, storage=storage)
            created = False
        ident = identity.of_study(
            metric=self.metric,
            direction=self.direction,
            space=space,
            arch_candidates=cell.arch_names,
            data_id=self._data_id(cell),
            fixed_overrides=cell.overrides,
            custom_search_space=self.custom_search_space,
        )
        identity.check(study, ident)  # ConfigError naming the difference and the fix
        if "search_space" not in study.user_attrs:  # any opener may describe it: the same values
            info = {
                **ident,
                "grid": {k: str(v) for k, v in cell.values.items()},
                "pruner": self.pruner_spec,  # data only: jobs rebuild it from an allowlist (hpo/pruners.py)
            }
            if self.budget_mode:
                info.update(
                    {
                        "budget": str(cell.cfg.budget.name),
                        "task": str(cell.cfg.task.name),
                        "data_version": str(cell.cfg.data.version),
                        "arch_params": cell.params_by_arch,
                    }
                )
            for k, v in info.items():
                study.set_user_attr(k, v)
        # Under the SQLite file lock, a creator killed while enqueueing left a study holding only (some of)
        # the extremes and no `extremes_enqueued` mark: finish its job.
        trials = study.get_trials(deepcopy=False)
        orphaned = str(self.storage_url).startswith("sqlite") and all(
            t.user_attrs.get("enqueued") == "extreme" for t in trials
        )
        if (created or orphaned) and not study.user_attrs.get("extremes_enqueued"):
            queued = {t.system_attrs.get("fixed_params", t.params).get("arch") for t in trials}
            for name in cell.extremes:  # the shape extremes first, so every study sees them
                if name not in queued:
                    study.enqueue_trial({"arch": name}, user_attrs={"enqueued": "extreme"})
            study.set_user_attr("extremes_enqueued", True)
        return study

    def _data_id(self, cell: Cell) -> str | None:
        if not self.budget_mode:
            return None
        from patchtst_hpo.data import panel, processed  # pandas: budget apps only

        d = cell.cfg.data
        if d.get("panel"):  # a panel is named by data.panel (data.ohlcv is null)
            return panel.dataset_id(d.panel, d.tier)
        return processed.dataset_id(d.ohlcv, d.tier, d.vix)

    # ---- the loop ----

    def _space(self, cell: Cell, space: dict) -> dict[str, optuna.distributions.BaseDistribution]:
        """The distributions searched in `cell`'s study: the plan's plus its arch candidates."""
        params = dict(space)
        if cell.arch_names:
            params["arch"] = optuna.distributions.CategoricalDistribution(cell.arch_names)
        return params

    def _trial_overrides(self, cell: Cell, trial: optuna.trial.Trial, space: dict) -> list[str]:
        chosen = {k: search_space.suggest(trial, k, dist) for k, dist in self._space(cell, space).items()}
        if self.custom_search_space is not None:
            # hydra-optuna-sweeper's contract: fn(cfg, trial) suggests more params on the trial; every param
            # it suggests becomes an override of the job (a `+key` name adds a key). From the user's config,
            # never from the storage.
            self.custom_search_space(cell.cfg, trial)
            chosen.update({k: v for k, v in trial.params.items() if k not in chosen})
        subdir = f"{cell.name}/{trial.number}" if self.budget_mode else str(trial.number)
        trial.set_user_attr("run_dir", str(self.sweep_dir / subdir))
        if chosen.get("arch") in cell.params_by_arch:
            trial.set_user_attr("params", cell.params_by_arch[chosen["arch"]])
        overrides = [*cell.overrides, *(search_space.override(k, v) for k, v in chosen.items())]
        if self.budget_mode:  # the project's task: what it returns, no test period, its trial identity
            if self.metric is not None:  # hydra/sweeper=patchtst sets both from objective.*
                overrides += [
                    search_space.override("objective.metric", self.metric),
                    search_space.override("objective.direction", self.direction),
                ]
            overrides.append("test=false")  # trials never see the test period; the report's confirmation does
            if self._memory is None and len(self.directions) == 1:  # pruning needs a shared storage
                overrides += [
                    search_space.override("trial.storage", self.public_url),
                    search_space.override("trial.study", cell.name),
                    f"trial.number={trial.number}",
                ]
        return [*overrides, search_space.override("hydra.sweep.subdir", subdir)]

    def _target(self, cell: Cell, space: dict) -> int:
        """Finished trials wanted in `cell`'s study: n_trials, or the whole grid if the grid sampler's is smaller."""
        self._grid_space = None
        target = (OmegaConf.select(self.sampler_cfg, "_target_") or "").rpartition(".")[2]
        if target != "GridSampler":
            return self.n_trials
        self._grid_space = {k: search_space.grid_choices(k, d) for k, d in self._space(cell, space).items()}
        size = math.prod(len(v) for v in self._grid_space.values())
        if size < self.n_trials:
            log.info("%s: the grid has %d points; n_trials %d -> %d", cell.name, size, self.n_trials, size)
        return min(self.n_trials, size)

    def _tell(self, study: optuna.Study, trial: optuna.trial.Trial, state, values) -> None:
        try:
            study.tell(trial, values if state == optuna.trial.TrialState.COMPLETE else None, state=state)
        except RuntimeError as e:  # the grid sampler calls study.stop() when its grid is done: harmless here
            if "Study.stop" not in str(e):
                raise

    def _run_study(self, cell: Cell, space: dict) -> optuna.Study:
        n_trials = self._target(cell, space)
        tolerate_all = self.max_failure_rate >= 1.0
        study = self._open_study(cell, space)
        # Exceptions of this run's trials, newest last ("" = no exception). Only raised errors count towards
        # "failed the same way": a NaN objective belongs to its hyperparameters, not to the set-up.
        recent: list[str] = []
        while True:
            fail_stale_trials(study)  # any sweeper's lost trials, on any host: FAIL, then queued again
            trials = study.get_trials(deepcopy=False)
            finished = sum(t.state in FINISHED for t in trials)
            running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
            failed = failed_count(trials)
            if finished >= n_trials:
                break
            if tolerate_all and failed >= self.max_failure_rate * n_trials:  # never aborts, but must end
                log.warning(
                    "%s: %d trials failed and max_failure_rate=%s tolerates them; the study stops after "
                    "max_failure_rate x n_trials=%d failures with %d finished",
                    study.study_name,
                    failed,
                    self.max_failure_rate,
                    n_trials,
                    finished,
                )
                break
            if not tolerate_all and failed > self.max_failure_rate * n_trials:
                raise SweepAborted(
                    f"study {study.study_name}: {failed} failed trials exceed max_failure_rate="
                    f"{self.max_failure_rate} x n_trials={n_trials}; see the trials' fail_reason attributes"
                )
            n_ask = min(self.n_jobs, n_trials - finished - running)
            if n_ask <= 0:  # the rest is in flight elsewhere (or lost: recovered after the grace period)
                time.sleep(self.heartbeat["heartbeat_interval"])
                continue
            batch = [self._ask(study) for _ in range(n_ask)]
            overrides = [self._trial_overrides(cell, t, space) for t in batch]
            log.info(
                "%s: launching trials %s (%d/%d finished)",
                study.study_name,
                [t.number for t in batch],
                finished,
                n_trials,
            )
            with contextlib.ExitStack() as beating:
                storage = optuna_private.storage(study)
                for t in batch:
                    beating.enter_context(
                        optuna_private.heartbeat_thread(optuna_private.trial_id(t), storage)
                    )
                returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            self.job_idx += len(batch)
            for trial, ret in zip(batch, returns, strict=True):
                state, values, reason = _reason(ret, len(self.directions))
                try:
                    if reason:
                        failed_now = state == optuna.trial.TrialState.FAIL
                        trial.set_user_attr("fail_reason" if failed_now else "prune_reason", reason)
                    self._tell(study, trial, state, values)
                except optuna.exceptions.UpdateFinishedTrialError:
                    log.warning(
                        "%s trial %d was failed as stale by another sweeper while it ran (no heartbeat for "
                        "grace_period); its result is not counted",
                        cell.name,
                        trial.number,
                    )
                    continue
                log.info(
                    "%s trial %d: %s%s",
                    cell.name,
                    trial.number,
                    state.name,
                    f" {', '.join(f'{v:.5g}' for v in values)}" if values else f" ({reason})",
                )
                raised = ret.status != JobStatus.COMPLETED and state == optuna.trial.TrialState.FAIL
                recent.append(reason if raised else "")
            window = max(2, self.n_jobs)
            last = recent[-window:]
            if not tolerate_all and len(last) == window and last[0] and all(r == last[0] for r in last):
                raise SweepAborted(
                    f"study {cell.name}: the last {window} trials all failed the same way, so the "
                    f"rest would too: {last[0]}"
                )
        return study

    def sweep(self, arguments: list[str]) -> list[dict]:
        plan = search_space.plan(arguments, self.params, grid_as_studies=self.budget_mode)
        cells = self._cells(plan)
        log.info(
            "budget_optuna: %d studies x %d finished trials, storage %s, sweep dir %s",
            len(cells),
            self.n_trials,
            self.public_url,
            self.sweep_dir,
        )
        if self._memory is not None:
            log.warning(
                "budget_optuna: hydra.sweeper.storage is null, so studies live in memory: nothing is saved "
                "and a re-run starts over (set a sqlite:///, postgresql:// or journal: storage to resume)"
            )
        elif self.storage_url.startswith("sqlite:///"):
            Path(self.storage_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        rows, studies = [], []
        try:
            for cell in cells:
                studies.append(self._run_study(cell, plan.space))
                rows.append(self._summarise(cell, studies[-1]))
            if len(self.directions) > 1 and len(studies) > 1:
                self._write_front(studies)
        finally:
            if rows:
                self._write_table(rows)
        return rows

    # ---- summary ----

    def _summarise(self, cell: Cell, study: optuna.Study) -> dict:
        """optimization_results.yaml of one study (best trial, or the Pareto front of a multi-objective
        study as in hydra-optuna-sweeper: `solutions`) and its row of summary.csv."""
        trials = study.get_trials(deepcopy=False)
        count = {s.name: sum(t.state == s for t in trials) for s in optuna.trial.TrialState}
        row: dict[str, Any] = {
            "study": study.study_name,
            **{k: str(v) for k, v in cell.values.items()},
            "complete": count["COMPLETE"],
            "pruned": count["PRUNED"],
            "failed": count["FAIL"],
        }
        result: dict[str, Any] = {
            "name": "budget_optuna",
            "study": study.study_name,
            "storage": self.public_url,
            "metric": self.metric,
            "direction": self.direction,
            "trials": count,
        }
        if count["COMPLETE"] and len(self.directions) == 1:
            best = study.best_trial
            result.update(
                {
                    "best_value": best.value,
                    "best_trial": best.number,
                    "best_params": best.params,
                    "run_dir": best.user_attrs.get("run_dir"),
                }
            )
            row.update({"best_value": round(best.value, 5), "best_trial": best.number})
            if self.budget_mode:
                arch = best.params.get("arch", cell.cfg.arch.name)
                result.update({"arch": arch, "params": best.user_attrs.get("params")})
                row.update({"best_arch": arch, "params": best.user_attrs.get("params")})
            row["run_dir"] = best.user_attrs.get("run_dir")
        elif count["COMPLETE"]:
            front = sorted(study.best_trials, key=lambda t: t.number)
            result["solutions"] = [self._solution(study, t) for t in front]
            row["pareto_front"] = len(front)
        out = self.sweep_dir / (study.study_name if self.budget_mode else "") / "optimization_results.yaml"
        write_text(out, OmegaConf.to_yaml(OmegaConf.create(result)))
        return row

    def _solution(self, study: optuna.Study, t: optuna.trial.FrozenTrial) -> dict:
        """One point of a Pareto front: values in direction order, params, and where it ran."""
        sol = {"study": study.study_name, "trial": t.number, "values": list(t.values), "params": t.params}
        if "params" in t.user_attrs:
            sol["n_params"] = t.user_attrs["params"]
        sol["run_dir"] = t.user_attrs.get("run_dir")
        return sol

    def _write_front(self, studies: list[optuna.Study]) -> None:
        """Multi-objective over several studies (e.g. budgets): the Pareto front of all their trials."""
        sign = [1.0 if d == "minimize" else -1.0 for d in self.directions]
        points = [
            (t, study, [s * v for s, v in zip(sign, t.values, strict=True)])
            for study in studies
            for t in study.best_trials
        ]

        def dominated(a: list[float]) -> bool:
            return any(
                all(x <= y for x, y in zip(b, a, strict=True))
                and any(x < y for x, y in zip(b, a, strict=True))
                for _, _, b in points
            )

        front = [self._solution(study, t) for t, study, key in points if not dominated(key)]
        result = {"metric": self.metric, "direction": self.direction, "solutions": front}
        write_text(self.sweep_dir / "pareto_front.yaml", OmegaConf.to_yaml(OmegaConf.create(result)))
        log.info(
            "Pareto front over %d studies: %d trials -> %s",
            len(studies),
            len(front),
            self.sweep_dir / "pareto_front.yaml",
        )

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
