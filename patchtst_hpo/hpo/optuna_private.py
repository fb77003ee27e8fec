"""The only module that touches private attributes of Optuna and Hydra; each has no public equivalent.

Keeping them here means an upgrade that renames one breaks one small, documented place (and its tests),
not the sweeper's logic. No other module may read an attribute that starts with an underscore.
"""

from __future__ import annotations

from typing import Any

import optuna
from hydra.core.utils import JobReturn


def study_id(study: optuna.Study) -> int:
    """`Study._study_id`: the storage key of a study.

    Needed by the job side to turn the trial *number* it was given on the command line into the storage's
    trial id (`storage.get_trial_id_from_study_id_trial_number`); Optuna has no public `Study.id`.
    """
    return study._study_id


def trial_id(trial: optuna.trial.FrozenTrial | optuna.trial.Trial) -> int:
    """`FrozenTrial._trial_id` / `Trial._trial_id`: the storage key of a trial.

    Needed to rebuild a live `optuna.trial.Trial(study, trial_id)` for a trial this process did not ask
    (report intermediate values from a job, set an attribute on a stale trial before failing it).
    """
    return trial._trial_id


def job_value(ret: JobReturn) -> Any:
    """`JobReturn._return_value`: the task's return value, or the exception a failed job raised.

    The public `JobReturn.return_value` property re-raises a failed job's exception, which would stop the
    sweep; the sweeper must read the exception to record it as the trial's `fail_reason` instead.
    """
    return ret._return_value


def storage(study: optuna.Study) -> optuna.storages.BaseStorage:
    """`Study._storage`: the storage object a study was opened with (heartbeats, stale-trial recovery)."""
    return study._storage


def pop_waiting_trial_id(study: optuna.Study) -> int | None:
    """`Study._pop_waiting_trial_id()`: atomically take a queued (WAITING) trial, as `Study.ask` does.

    The sweeper asks in two steps (take or create the trial, record its heartbeat, then build the `Trial`)
    so no trial exists without a heartbeat longer than a few milliseconds, and the sampler can be seeded
    from the number of the first trial this process gets.
    """
    return study._pop_waiting_trial_id()


def unwrap_storage(storage: optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    """`_CachedStorage._backend`: a study wraps an RDBStorage in a cache; its heartbeat settings
    (`grace_period`) live on the wrapped storage, which has no public accessor."""
    from optuna.storages._cached_storage import _CachedStorage

    return storage._backend if isinstance(storage, _CachedStorage) else storage
