"""The budget_optuna sweeper: a Hydra-Optuna sweeper that runs the studies a planner plans.

Flow of `sweep()`: parse the command line and `params` (hpo/search_space.py) -> the planner named in
`hydra.sweeper.planner` turns that into studies (hpo/planner.py; this project's: hpo/budget_planner.py) ->
for each: open or create it (checking its identity), enqueue the trials the planner puts first (once per
study), then fail the RUNNING trials whose sweeper is gone (no heartbeat) and queue them again, and ask ->
launch (with heartbeats) -> tell in batches of `n_jobs` until `n_trials` trials have finished (COMPLETE or
PRUNED) -> write results (hpo/results.py). See docs/hpo.md for the rules on failures, resume and concurrency.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from patchtst_hpo import trust
from patchtst_hpo.errors import ConfigError, PatchTSTHPOError
from patchtst_hpo.hpo import (
    identity,
    optuna_private,
    outcome,
    pruners,
    queued,
    results,
    sampling,
    search_space,
)
from patchtst_hpo.hpo import planner as planner_mod
from patchtst_hpo.hpo.heartbeat import HOST, fail_stale_trials, failed_count, lose
from patchtst_hpo.hpo.passwords import split_password
from patchtst_hpo.hpo.planner import StudyPlan
from patchtst_hpo.hpo.storage import open_storage, storage_lock

log = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


class SweepAborted(PatchTSTHPOError):
    """The sweep stopped early because trials keep failing (the reason is in the message)."""


def _plain(v: Any) -> Any:
    """A config node as plain Python (lists and dicts), anything else unchanged."""
    return OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v


def _heartbeat(heartbeat_interval: Any, grace_period: Any, max_retry: Any) -> dict[str, int]:
    """The storage's heartbeat settings; ConfigError unless 1 <= interval < grace period."""
    hb = {"heartbeat_interval": int(heartbeat_interval), "grace_period": int(grace_period)}
    if hb["heartbeat_interval"] < 1 or hb["grace_period"] <= hb["heartbeat_interval"]:
        raise ConfigError(
            f"hydra.sweeper.heartbeat_interval={heartbeat_interval}, grace_period={grace_period}: need "
            f"1 <= heartbeat_interval < grace_period (seconds), e.g. 10 and 30"
        )
    return {**hb, "max_retry": int(max_retry)}


def _at_least(key: str, value: Any, least: int) -> int:
    """n_trials may be 0 (create and describe the studies, run nothing); n_jobs must be >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"hydra.sweeper.{key}={value!r}: use an integer >= {least}")
    return value


def _directions(direction: Any) -> list[str]:
    """One direction per objective; ConfigError unless each is minimize or maximize."""
    directions = [str(d) for d in (direction if isinstance(direction, list) else [direction])]
    if not directions or any(d not in ("minimize", "maximize") for d in directions):
        raise ConfigError(f"hydra.sweeper.direction={direction!r}: use minimize, maximize or a list of them")
    return directions


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
        planner: str | None = None,
        transfer_from: str | None = None,
        heartbeat_interval: int = 10,
        grace_period: int = 30,
        max_retry: int = 3,
    ) -> None:
        # storage_url (with its password) stays in this process; jobs, logs and files get public_url and
        # read the password from PGPASSWORD / ~/.pgpass (docs/hpo.md "Secrets").
        self.prefix = None if study_name is None else str(study_name)  # a number is a fine name
        if self.prefix is not None:  # it names folders and studies: a safe name (patchtst_hpo/trust.py)
            trust.check_name(self.prefix, "hydra.sweeper.study_name=", study=True)
        self.storage_url = None if storage is None else str(storage)
        self.public_url, self.password = split_password(storage) if storage else ("in-memory", None)
        self._memory = optuna.storages.InMemoryStorage() if storage is None else None
        self.heartbeat = _heartbeat(heartbeat_interval, grace_period, max_retry)
        self.direction, self.metric = _plain(direction), _plain(metric)
        self.directions = _directions(self.direction)
        self.n_trials, self.n_jobs = _at_least("n_trials", n_trials, 0), _at_least("n_jobs", n_jobs, 1)
        self.seed = sampling.seed_of(sampler, seed)
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
        self.planner_cls = planner_mod.load(planner)  # from the user's config, a Planner subclass
        self.transfer_from = None if transfer_from is None else str(transfer_from)
        if self.transfer_from is not None and not self.planner_cls.supports_transfer:
            raise ConfigError(
                f"hydra.sweeper.transfer_from={self.transfer_from}: planner {self.planner_cls.__name__} cannot take "
                f"hyperparameters from another study; use hydra.sweeper.planner=patchtst_hpo.hpo.budget_planner."
                f"BudgetPlanner (hydra/sweeper=patchtst) or drop transfer_from"
            )
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
        if self.password is not None:
            self._hide_password(config)
        self.planner = self.planner_cls(
            planner_mod.SweepContext(
                prefix=self.prefix,
                metric=self.metric,
                direction=self.direction,
                directions=self.directions,
                custom_search_space=self.custom_search_space,
                public_url=self.public_url,
                shared_storage=self._memory is None,
                config=config,
                compose=self._compose,
                transfer_from=self.transfer_from,
            )
        )
        self._say_bare_defaults(config)

    def _say_bare_defaults(self, config: DictConfig) -> None:
        """An app with budget and grid groups (this project) swept by the plugin's bare defaults (what
        swapping `optuna` for `budget_optuna` in a lightning-hydra-template file gives): said, not silent."""
        choices = OmegaConf.select(config, "hydra.runtime.choices") or {}
        if "budget" in choices and "grid" in choices and self.planner_cls is planner_mod.Planner:
            log.warning(
                "hydra/sweeper=budget_optuna is the plugin's bare defaults: storage %s, pruner %s, one study "
                "(no budget grid, no arch candidates); this project's defaults are hydra/sweeper=patchtst",
                "null (in memory, nothing saved)" if self._memory is not None else self.public_url,
                self.pruner_spec["name"],
            )

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

    def _compose(self, overrides: Sequence[str]) -> DictConfig:
        loader = self.hydra_context.config_loader
        return loader.load_sweep_config(master_config=self.config, sweep_overrides=list(overrides))

    # ---- studies ----

    def _ask(self, study: optuna.Study, take_queued: bool = True) -> optuna.trial.Trial:
        """`study.ask()` in two steps: take a queued trial (unless `take_queued` is False: the planned first
        trials wait, see `_batch`) or create one and record its heartbeat at once (a trial without heartbeat
        is recovered only after the grace period), then build the Trial (which samples) with this process's
        sampler, seeded on its first trial."""
        trial_id = optuna_private.take_trial_id(study, take_queued)
        storage = optuna_private.storage(study)
        storage.set_trial_user_attr(trial_id, "sweeper_host", HOST)  # same-host fast path of recovery
        storage.set_trial_user_attr(trial_id, "sweeper_pid", os.getpid())
        if study.study_name not in self._seeded:
            first = storage.get_trial_number_from_id(trial_id)
            study.sampler = sampling.build(
                self.sampler_cfg, self.seed, study.study_name, first, self._grid_space
            )
            self._seeded.add(study.study_name)
        return optuna.trial.Trial(study, trial_id)

    def _open_study(self, plan: StudyPlan) -> optuna.Study:
        if plan.name is not None:  # made of the prefix and grid values: one folder name
            trust.check_name(plan.name, "study name", study=True)
        lock = storage_lock(self.storage_url) if self.storage_url else contextlib.nullcontext()
        with lock:  # one process at a time creates, describes and seeds a study
            storage = self._memory or open_storage(self.storage_url, locked=True, **self.heartbeat)
            # Exactly one process creates a study (the others get DuplicatedStudyError and load it): only
            # the creator enqueues the planned first trials, so each is queued once.
            try:
                study = optuna.create_study(study_name=plan.name, storage=storage, directions=self.directions)
                created = True
            except optuna.exceptions.DuplicatedStudyError:
                study = optuna.load_study(study_name=plan.name, storage=storage)
                created = False
            identity.check(study, plan.identity)  # ConfigError naming the difference and the fix
            if study.metric_names is None:  # optuna-dashboard and Optuna's plots name their axes with these
                with warnings.catch_warnings():  # experimental in Optuna 4/5: said once per study otherwise
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    study.set_metric_names(self._metric_names())
            if "search_space" not in study.user_attrs:  # any opener may describe it: the same values
                self._describe(study, plan)
            if "sampler" not in study.user_attrs:  # for the report: which trials were random start-up
                study.set_user_attr("sampler", sampling.describe(self.sampler_cfg))
            self._enqueue_first(study, plan, created)
            return study

    def _metric_names(self) -> list[str]:
        """`hydra.sweeper.metric` (the project: objective.metric), else the task's name (Hydra's job name)."""
        names = self.metric if isinstance(self.metric, list) else [self.metric]
        if any(n is None for n in names) or len(names) != len(self.directions):
            job = str(self.config.hydra.job.name)
            names = (
                [job] if len(self.directions) == 1 else [f"{job}_{i}" for i in range(len(self.directions))]
            )
        return [str(n) for n in names]

    def _describe(self, study: optuna.Study, plan: StudyPlan) -> None:
        info = {
            **plan.identity,
            "grid": {k: str(v) for k, v in plan.values.items()},
            "pruner": self.pruner_spec,  # data only: jobs rebuild it from an allowlist (hpo/pruners.py)
            **plan.user_attrs,
        }
        for k, v in info.items():
            study.set_user_attr(k, v)

    def _enqueue_first(self, study: optuna.Study, plan: StudyPlan, created: bool) -> None:
        """The planned first trials (the shape extremes), once per study, in the planner's order. Under the
        SQLite file lock, a creator killed while enqueueing left a study holding only (some of) them and no
        `extremes_enqueued` mark (the name predates the planner; kept for stored studies): finish its job."""
        trials = study.get_trials(deepcopy=False)
        orphaned = str(self.storage_url).startswith("sqlite") and all(
            t.user_attrs.get("enqueued") == plan.enqueue_as for t in trials
        )
        if not (created or orphaned) or study.user_attrs.get("extremes_enqueued"):
            return
        queued = [t.system_attrs.get("fixed_params", t.params) for t in trials]
        for params in plan.enqueue:
            if not any(all(q.get(k) == v for k, v in params.items()) for q in queued):
                study.enqueue_trial(params, user_attrs={"enqueued": plan.enqueue_as})
        study.set_user_attr("extremes_enqueued", True)

    # ---- the loop ----

    def _trial_overrides(self, plan: StudyPlan, trial: optuna.trial.Trial) -> list[str]:
        """The job's overrides: the study's, the drawn params, the planner's, and its own subdir.
        `trust.UntrustedError` for a queued trial (storage data) whose params are outside the space."""
        chosen = {k: queued.suggest(trial, k, dist) for k, dist in plan.space.items()}
        if self.custom_search_space is not None:
            # hydra-optuna-sweeper's contract: fn(cfg, trial) suggests more params on the trial; every param
            # it suggests becomes an override of the job (a `+key` name adds a key). From the user's config,
            # never from the storage.
            self.custom_search_space(plan.cfg, trial)
            chosen.update({k: v for k, v in trial.params.items() if k not in chosen})
        subdir = f"{plan.out_dir}/{trial.number}" if plan.out_dir else str(trial.number)
        trial.set_user_attr("run_dir", str(self.sweep_dir / subdir))
        return [
            *plan.overrides,
            *(search_space.override(k, v) for k, v in chosen.items()),
            *self.planner.trial_overrides(plan, trial, chosen),
            search_space.override("hydra.sweep.subdir", subdir),
        ]

    def _prepare(self, study: optuna.Study, plan: StudyPlan, batch: list) -> tuple[list, list[list[str]]]:
        """(trials, their overrides) of a batch; a trial whose queued params are outside the search space
        (someone wrote the storage) is failed with the reason, not launched, and the sweep goes on."""
        keep, overrides = [], []
        for t in batch:
            try:
                overrides.append(self._trial_overrides(plan, t))
                keep.append(t)
            except trust.UntrustedError as e:
                log.warning("%s trial %d: %s; failed, not run", study.study_name, t.number, e)
                t.set_user_attr("fail_reason", f"UntrustedError: {e}"[:2000])
                self._tell(study, t, optuna.trial.TrialState.FAIL, None)
        return keep, overrides

    def _tell(self, study: optuna.Study, trial: optuna.trial.Trial, state, values) -> None:
        try:
            study.tell(trial, values if state == optuna.trial.TrialState.COMPLETE else None, state=state)
        except RuntimeError as e:  # the grid sampler calls study.stop() when its grid is done: harmless here
            if "Study.stop" not in str(e):
                raise

    def _run_study(self, plan: StudyPlan) -> optuna.Study:
        """Ask -> launch -> tell in batches until the study has `n_trials` finished trials (or must stop)."""
        self._grid_space = sampling.grid(self.sampler_cfg, plan.space)
        n_trials = sampling.target(self.n_trials, self._grid_space, plan.name)
        study = self._open_study(plan)
        # Exceptions of this run's trials, newest last ("" = no exception). Only raised errors count towards
        # "failed the same way": a NaN objective belongs to its hyperparameters, not to the set-up.
        recent: list[str] = []
        while True:
            fail_stale_trials(study)  # any sweeper's lost trials, on any host: FAIL, then queued again
            trials = study.get_trials(deepcopy=False)
            finished = sum(t.state in FINISHED for t in trials)
            running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
            if finished >= n_trials or self._enough_failures(study, failed_count(trials), finished, n_trials):
                break
            n_ask = min(self.n_jobs, n_trials - finished - running)
            if n_ask <= 0:  # the rest is in flight elsewhere (or lost: recovered after the grace period)
                time.sleep(self.heartbeat["heartbeat_interval"])
                continue
            batch = self._batch(study, plan, trials, n_ask)
            log.info(
                "%s: launching trials %s (%d/%d finished)",
                study.study_name,
                [t.number for t in batch],
                finished,
                n_trials,
            )
            batch, overrides = self._prepare(study, plan, batch)
            if not batch:
                continue
            returns = self._launch(study, batch, overrides)
            if returns is not None:
                recent += self._tell_batch(study, batch, returns)
            self._check_same_failures(study, recent)
        return study

    def _batch(self, study: optuna.Study, plan: StudyPlan, trials: list, n: int) -> list[optuna.trial.Trial]:
        """`n` trials to launch. The queued trials (the planned first ones, retries) are taken only once the
        study holds `plan.enqueue_after` trials besides the planned ones (the budget planner: the sampler's
        start-up trials and one model-guided trial); they were queued once, when the study was created."""
        others = sum(t.user_attrs.get("enqueued") != plan.enqueue_as for t in trials)
        batch = []
        for _ in range(n):
            batch.append(self._ask(study, take_queued=others >= plan.enqueue_after))
            others += batch[-1].user_attrs.get("enqueued") != plan.enqueue_as
        return batch

    def _enough_failures(self, study: optuna.Study, failed: int, finished: int, n_trials: int) -> bool:
        """The failure policy: True to end the study quietly (max_failure_rate >= 1 tolerates failures
        until rate x n_trials), SweepAborted when failures exceed rate x n_trials (rate < 1)."""
        rate = self.max_failure_rate
        if rate >= 1.0:
            if failed >= rate * n_trials:  # never aborts, but must end
                log.warning(
                    "%s: %d trials failed and max_failure_rate=%s tolerates them; the study stops after "
                    "max_failure_rate x n_trials=%d failures with %d finished",
                    study.study_name,
                    failed,
                    rate,
                    n_trials,
                    finished,
                )
                return True
            return False
        if failed > rate * n_trials:
            raise SweepAborted(
                f"study {study.study_name}: {failed} failed trials exceed max_failure_rate="
                f"{rate} x n_trials={n_trials}; see the trials' fail_reason attributes"
            )
        return False

    def _launch(
        self, study: optuna.Study, batch: list, overrides: list[list[str]]
    ) -> Sequence[JobReturn] | None:
        """Run one batch through Hydra's launcher, a heartbeat thread beside each trial. A worker process
        lost under the launcher (killed, out of memory: joblib's TerminatedWorkerError) takes the batch's
        results with it: its trials are failed as lost and queued again (heartbeat.lose); None is returned."""
        import concurrent.futures

        try:
            with optuna_private.heartbeats(study, batch):
                returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
        except OSError as e:  # Hydra's own writes (.hydra/, logs) on a full disk, before the task ran
            if not outcome.disk_full(str(e), self.sweep_dir):
                raise
            for t in batch:
                t.set_user_attr("fail_reason", f"OSError: {e}"[:2000])
                self._tell(study, t, optuna.trial.TrialState.FAIL, None)
            raise outcome.stop_on_full_disk(study.study_name, batch, str(e), self.sweep_dir) from e
        except concurrent.futures.BrokenExecutor as e:
            why = " ".join(str(e).split())[:300]
            log.warning(
                "%s: the launcher lost a worker (%s); trials %s failed and queued again",
                study.study_name,
                why,
                [t.number for t in batch],
            )
            lose(study, batch, f"stale: the launcher lost its worker ({type(e).__name__}: {why})")
            return None
        finally:
            self.job_idx += len(batch)
        return returns

    def _tell_batch(self, study: optuna.Study, batch: list, returns: Sequence[JobReturn]) -> list[str]:
        """Tell each trial its state, with the reason of a failed or pruned one; the raised errors, in order
        ("" for a trial that did not raise; nothing for one another sweeper failed as stale meanwhile)."""
        raised = []
        for trial, ret in zip(batch, returns, strict=True):
            state, values, reason = outcome.of_job(ret, len(self.directions))
            try:
                if reason:
                    failed_now = state == optuna.trial.TrialState.FAIL
                    trial.set_user_attr("fail_reason" if failed_now else "prune_reason", reason)
                self._tell(study, trial, state, values)
            except optuna.exceptions.UpdateFinishedTrialError:
                log.warning(
                    "%s trial %d was failed as stale by another sweeper while it ran (no heartbeat for "
                    "grace_period); its result is not counted",
                    study.study_name,
                    trial.number,
                )
                continue
            log.info(
                "%s trial %d: %s%s",
                study.study_name,
                trial.number,
                state.name,
                f" {', '.join(f'{v:.5g}' for v in values)}" if values else f" ({reason})",
            )
            failed = ret.status != JobStatus.COMPLETED and state == optuna.trial.TrialState.FAIL
            raised.append(reason if failed else "")
            if failed and outcome.disk_full(reason, self.sweep_dir):
                raise outcome.stop_on_full_disk(study.study_name, [trial], reason, self.sweep_dir)
        return raised

    def _check_same_failures(self, study: optuna.Study, recent: list[str]) -> None:
        """SweepAborted when the last max(2, n_jobs) trials raised the same error (unless rate >= 1)."""
        window = max(2, self.n_jobs)
        last = recent[-window:]
        if (
            self.max_failure_rate < 1.0
            and len(last) == window
            and last[0]
            and all(r == last[0] for r in last)
        ):
            raise SweepAborted(
                f"study {study.study_name}: the last {window} trials all failed the same way, so the "
                f"rest would too: {last[0]}"
            )

    def sweep(self, arguments: list[str]) -> None:
        """Run every planned study; as upstream's, returns None (results: the files of hpo/results.py)."""
        plan = search_space.plan(arguments, self.params, grid_as_studies=self.planner.grid_as_studies)
        studies = self.planner.studies(plan)
        log.info(
            "budget_optuna: %d studies x %d finished trials, storage %s, sweep dir %s",
            len(studies),
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
        out = {"sweep_dir": self.sweep_dir, "metric": self.metric, "direction": self.direction}
        rows, done = [], []
        try:
            for study_plan in studies:
                done.append(self._run_study(study_plan))
                rows.append(
                    results.summarise(done[-1], study_plan, self.planner, storage=self.public_url, **out)
                )
            if len(self.directions) > 1 and len(done) > 1:
                results.write_front(done, self.directions, **out)
        finally:
            if rows:
                results.write_table(rows, self.sweep_dir)
