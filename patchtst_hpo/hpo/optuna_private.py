"""The only module that touches private attributes of Optuna and Hydra; each has no public equivalent.

Keeping them here means an upgrade that renames one breaks one small, documented place (and its tests),
not the sweeper's logic. No other module may read an attribute that starts with an underscore (hpo/storage.py
implements Optuna's heartbeat protocol method `_get_stale_trial_ids`, which is overriding, not reading).
Imports nothing heavy at module level, so the CLI layer can use it before a run starts.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def take_trial_id(study: optuna.Study, take_queued: bool = True) -> int:
    """The first step of the sweeper's two-step ask: a queued trial (unless `take_queued` is False) or a new
    one, its heartbeat recorded at once (a trial without heartbeat is recovered only after the grace period)."""
    storage = study._storage
    trial_id = study._pop_waiting_trial_id() if take_queued else None
    if trial_id is None:
        trial_id = storage.create_new_trial(study._study_id)
    if heartbeat_enabled(storage):  # every storage but in-memory
        storage.record_heartbeat(trial_id)
    return trial_id


def unwrap_storage(storage: optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    """`_CachedStorage._backend`: a study wraps an RDBStorage in a cache; its heartbeat settings
    (`grace_period`) live on the wrapped storage, which has no public accessor."""
    from optuna.storages._cached_storage import _CachedStorage

    return storage._backend if isinstance(storage, _CachedStorage) else storage


# ---- heartbeats (optuna.storages._heartbeat has no public module; Study.optimize uses it internally) ----


def heartbeat_base() -> type:
    """`optuna.storages._heartbeat.BaseHeartbeat`: the protocol a storage implements so that
    `fail_stale_trials` and the heartbeat thread work on it (storage.py gives the journal storage one)."""
    from optuna.storages._heartbeat import BaseHeartbeat

    return BaseHeartbeat


def heartbeat_enabled(storage: optuna.storages.BaseStorage) -> bool:
    """`is_heartbeat_enabled`: the storage records heartbeats (every storage the sweeper opens but in-memory)."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(storage)


def heartbeat_thread(trial_id: int, storage: optuna.storages.BaseStorage):
    """`get_heartbeat_thread`: the thread `Study.optimize` runs beside a trial; the sweeper runs one per trial
    in flight around `launcher.launch` (a context manager; a no-op without heartbeats)."""
    from optuna.storages._heartbeat import get_heartbeat_thread

    return get_heartbeat_thread(trial_id, storage)


@contextlib.contextmanager
def heartbeats(study: optuna.Study, trials: Sequence[optuna.trial.Trial]) -> Iterator[None]:
    """A heartbeat thread beside each trial of a batch while the block runs (the launcher's batch)."""
    with contextlib.ExitStack() as beating:
        for t in trials:
            beating.enter_context(heartbeat_thread(t._trial_id, study._storage))
        yield


def stale_trial_ids(storage: optuna.storages.BaseStorage, study_id: int) -> list[int]:
    """`BaseHeartbeat._get_stale_trial_ids`: the RUNNING trials whose heartbeat is older than the grace
    period, as Optuna's `fail_stale_trials` reads them (the sweeper also writes a reason and retries)."""
    return storage._get_stale_trial_ids(study_id)


def rdb_trials_with_heartbeat(storage: optuna.storages.RDBStorage, study_id: int) -> set[int]:
    """Ids of a study's trials that have a row in Optuna's heartbeat table (`_rdb.models`): a RUNNING trial
    without one was left by a sweeper killed before its first heartbeat, which Optuna never fails."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session) as session:
        rows = (
            session.query(models.TrialHeartbeatModel.trial_id)
            .join(models.TrialModel, models.TrialModel.trial_id == models.TrialHeartbeatModel.trial_id)
            .filter(models.TrialModel.study_id == study_id)
            .all()
        )
    return {r[0] for r in rows}


# ---- Hydra ----


def hydra_run_and_report_module():
    """`hydra._internal.utils`: holds `run_and_report`, which prints a failing app's traceback; the CLI wraps it
    so the project's config and data errors are one line with exit code 2 (Hydra has no public hook)."""
    import hydra._internal.utils as hydra_utils

    return hydra_utils


# ---- job-side pruning reads (hpo/job_trial.py) ----


def rdb_backend(storage: optuna.storages.BaseStorage) -> optuna.storages.RDBStorage | None:
    """The RDBStorage under `storage` (a study's cache wrapper unwrapped), or None for other storages."""
    import optuna

    inner = unwrap_storage(storage)
    return inner if isinstance(inner, optuna.storages.RDBStorage) else None


def rdb_complete_values_at_step(
    storage: optuna.storages.RDBStorage, study_id: int, step: int
) -> tuple[int, list[float]]:
    """(number of COMPLETE trials of the study, their intermediate values at `step`), in one indexed query
    of Optuna's tables (`_rdb.models`): what a median/percentile pruner reads, without loading each trial's
    params, attributes and other steps (`RDBStorage.get_all_trials` does, ~1 ms per trial on SQLite)."""
    from optuna.storages._rdb import models

    kinds = models.TrialIntermediateValueModel.TrialIntermediateValueType
    special = {kinds.NAN.name: math.nan, kinds.INF_POS.name: math.inf, kinds.INF_NEG.name: -math.inf}
    # Driver-level SQL: SQLAlchemy's per-row Enum decoding costs 2x the query itself at 5,000 trials.
    sql = (
        "SELECT iv.intermediate_value, iv.intermediate_value_type FROM trials t "
        "LEFT JOIN trial_intermediate_values iv ON iv.trial_id = t.trial_id AND iv.step = %(step)s "
        "WHERE t.study_id = %(study)s AND t.state = %(state)s"
    )
    with storage.engine.connect() as conn:
        if conn.dialect.paramstyle == "qmark":
            sql = sql.replace("%(step)s", "?").replace("%(study)s", "?").replace("%(state)s", "?")
            rows = conn.exec_driver_sql(sql, (int(step), int(study_id), "COMPLETE")).all()
        else:
            rows = conn.exec_driver_sql(
                sql, {"step": int(step), "study": int(study_id), "state": "COMPLETE"}
            ).all()
    values = [v if kind == kinds.FINITE.name else special[kind] for v, kind in rows if kind is not None]
    return len(rows), values


# ---- synthetic studies for the bench and tests (thousands of finished trials in seconds) ----


def rdb_bulk_add_trials(
    storage: optuna.storages.RDBStorage, study_id: int, trials: list[optuna.trial.FrozenTrial]
) -> None:
    """`Study.add_trials` in one transaction of bulk inserts into Optuna's tables: the ORM path costs ~19 ms
    CPU per trial, too slow to build a 5,000-trial study for a benchmark. Same rows as `add_trials` writes
    (params, values, intermediate values, user and system attributes); a test compares the two. SQLite only:
    trial ids are given explicitly, which a server database's id sequence would not follow."""
    import json

    import optuna
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from sqlalchemy import func, insert, select

    with _create_scoped_session(storage.scoped_session) as session:
        next_id = (session.execute(select(func.max(models.TrialModel.trial_id))).scalar() or 0) + 1
        first = session.execute(
            select(func.count(models.TrialModel.trial_id)).where(models.TrialModel.study_id == study_id)
        ).scalar()
        rows: dict[type, list[dict]] = {m: [] for m in _bulk_models()}
        for i, tr in enumerate(trials):
            tid = next_id + i
            rows[models.TrialModel].append(
                {
                    "trial_id": tid,
                    "number": first + i,
                    "study_id": study_id,
                    "state": tr.state,
                    "datetime_start": tr.datetime_start,
                    "datetime_complete": tr.datetime_complete,
                }
            )
            for k, (v, kind) in enumerate(
                models.TrialValueModel.value_to_stored_repr(x) for x in (tr.values or [])
            ):
                rows[models.TrialValueModel].append(
                    {"trial_id": tid, "objective": k, "value": v, "value_type": kind}
                )
            for step, x in tr.intermediate_values.items():
                v, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(x)
                rows[models.TrialIntermediateValueModel].append(
                    {"trial_id": tid, "step": step, "intermediate_value": v, "intermediate_value_type": kind}
                )
            for name, value in tr.params.items():
                dist = tr.distributions[name]
                rows[models.TrialParamModel].append(
                    {
                        "trial_id": tid,
                        "param_name": name,
                        "param_value": dist.to_internal_repr(value),
                        "distribution_json": optuna.distributions.distribution_to_json(dist),
                    }
                )
            for model, attrs in (
                (models.TrialUserAttributeModel, tr.user_attrs),
                (models.TrialSystemAttributeModel, tr.system_attrs),
            ):
                rows[model] += [
                    {"trial_id": tid, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()
                ]
        for model, batch in rows.items():
            if batch:
                session.execute(insert(model.__table__), batch)


def _bulk_models() -> tuple[type, ...]:
    from optuna.storages._rdb import models

    return (
        models.TrialModel,
        models.TrialValueModel,
        models.TrialIntermediateValueModel,
        models.TrialParamModel,
        models.TrialUserAttributeModel,
        models.TrialSystemAttributeModel,
    )
