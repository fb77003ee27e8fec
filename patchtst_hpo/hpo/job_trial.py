"""A job's own trial: report intermediate values and ask the study's pruner, without reading the whole study.

Optuna's `Trial.should_prune()` hands the pruner the whole study: on a fresh process (every job) the first
call reads every trial with its params, attributes and intermediate values (SQLite: ~1 ms per finished trial,
so a study's pruning reads grow with the square of its trials). Here a job instead
- keeps one storage object per storage URL for the process (a basic-launcher sweep or a reused joblib worker
  opens it once; a journal's log is then replayed incrementally),
- writes its reports and attributes straight to the storage (one row each on RDB storages),
- and for the pruners whose decision reads only the COMPLETE trials' values at the current step (Median,
  Percentile; Threshold and Nop read nothing else; Patient wrapping one of those) gives Optuna's own pruner a
  view of the study that holds exactly that: on RDB storages one indexed query per report for that step's
  values. The decision is Optuna's code on the same numbers (tests/test_job_trial.py compares).
Successive halving, Hyperband and Wilcoxon read more (every trial's rung attributes, the best trial): they get
Optuna's own `Trial` over a study kept for the process (its cache makes later reads incremental).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from patchtst_hpo import trust
from patchtst_hpo.hpo import optuna_private, pruners
from patchtst_hpo.hpo.storage import open_storage

# Pruners whose `prune(study, trial)` reads only `study.direction`, the trial's own intermediate values and
# `study.get_trials(states=(COMPLETE,))[i].intermediate_values[trial.last_step]`.
STEP_ONLY = ("MedianPruner", "PercentilePruner", "ThresholdPruner", "NopPruner")


@functools.cache
def shared_storage(url: str) -> optuna.storages.BaseStorage:
    """One storage object per URL for this process: jobs run one after another in a sweeper (basic launcher)
    or a reused worker (joblib) open it once."""
    return open_storage(url)


@functools.cache
def _shared_study(url: str, study_name: str) -> optuna.Study:
    return optuna.load_study(study_name=study_name, storage=shared_storage(url))


def step_only(spec: dict) -> bool:
    """The stored pruner spec names a pruner whose decision needs only one step's COMPLETE values."""
    if spec["name"] == "PatientPruner":
        wrapped = spec["kwargs"].get("wrapped_pruner")
        return wrapped is None or step_only(wrapped)
    return spec["name"] in STEP_ONLY


class _Done:
    """What a step-only pruner reads of a COMPLETE trial: its value at the step being decided (or none)."""

    __slots__ = ("intermediate_values",)
    state = TrialState.COMPLETE

    def __init__(self, intermediate_values: dict[int, float]) -> None:
        self.intermediate_values = intermediate_values


class StepView:
    """The study as a step-only pruner sees it at `step`: its direction and its COMPLETE trials, each holding
    only its value at `step`. Anything else a pruner asks for is an error, not a silently different answer."""

    def __init__(self, direction: optuna.study.StudyDirection, complete: list[_Done]) -> None:
        self.direction = direction
        self.directions = [direction]
        self._complete = complete

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[_Done]:
        if states is None or tuple(states) != (TrialState.COMPLETE,):
            raise NotImplementedError(f"StepView holds COMPLETE trials only, not {states}")
        return self._complete


class JobTrial:
    """The trial `number` of `study_name`, as its job sees it: report, should_prune, set_user_attr."""

    def __init__(self, storage_url: str, study_name: str, number: int) -> None:
        trust.check_name(study_name, "trial.study=", study=True)  # it names the study's folders too
        self.url, self.study_name = storage_url, study_name
        self.storage = shared_storage(storage_url)
        self.study_id = self.storage.get_study_id_from_name(study_name)
        self.trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)
        self.number = number
        spec = self.storage.get_study_user_attrs(self.study_id).get("pruner")
        where = f"study {study_name!r} user attribute 'pruner'"
        self.pruner = pruners.build(spec, where)  # ConfigError for anything not allowlisted
        self.step_only = step_only(spec)
        self.direction = self.storage.get_study_directions(self.study_id)[0]
        # the trial's own values so far (one trial; a trial resumed from a checkpoint may have some)
        self.values = dict(self.storage.get_trial(self.trial_id).intermediate_values)

    def report(self, value: float, step: int) -> None:
        if step in self.values:
            return  # Optuna ignores a second report of a step (with a warning)
        self.storage.set_trial_intermediate_value(self.trial_id, step, float(value))
        self.values[step] = float(value)

    def should_prune(self) -> bool:
        if not self.step_only:  # Optuna's own path over the study kept for this process
            study = _shared_study(self.url, self.study_name)
            study.pruner = self.pruner
            return bool(optuna.trial.Trial(study, self.trial_id).should_prune())
        if not self.values:
            return False
        step = max(self.values)
        view = StepView(self.direction, self._complete_at(step))
        return bool(self.pruner.prune(view, self._frozen()))

    def set_user_attr(self, key: str, value: Any) -> None:
        self.storage.set_trial_user_attr(self.trial_id, key, value)

    def _complete_at(self, step: int) -> list[_Done]:
        """The COMPLETE trials of the study, each with its value at `step` if it has one."""
        rdb = optuna_private.rdb_backend(self.storage)
        if rdb is not None:
            n, values = optuna_private.rdb_complete_values_at_step(rdb, self.study_id, step)
        else:  # journal / in-memory: the replayed study, read in place (no copies)
            done = self.storage.get_all_trials(self.study_id, deepcopy=False, states=(TrialState.COMPLETE,))
            n = len(done)
            values = [t.intermediate_values[step] for t in done if step in t.intermediate_values]
        empty: dict[int, float] = {}
        return [_Done({step: v}) for v in values] + [_Done(empty)] * (n - len(values))

    def _frozen(self) -> FrozenTrial:
        """This trial as the pruner reads it: RUNNING, with its own intermediate values."""
        return FrozenTrial(
            number=self.number,
            state=TrialState.RUNNING,
            value=None,
            datetime_start=datetime.now(),
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={},
            system_attrs={},
            intermediate_values=dict(self.values),
            trial_id=self.trial_id,
        )
