"""Heartbeats and the recovery of trials whose sweeper died: RDB storages use Optuna's heartbeats (plus: a
RUNNING trial that never got one is stale after the grace period), journal files the same protocol on a
trial system attribute; a stale trial is failed and queued again (`RetryLostTrial`, up to max_retry times).
Attributes read back here (pids, beats) are storage data: anything but a plain number is ignored."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.trial import FrozenTrial, TrialState

from patchtst_hpo.hpo import optuna_private

log = logging.getLogger(__name__)

HOST = socket.gethostname()
# Trial attributes that belong to one attempt, not to the configuration: a retry starts without them.
ATTEMPT_ATTRS = ("sweeper_host", "sweeper_pid", "run_dir", "fail_reason", "prune_reason", "epochs")


class HeartbeatRDBStorage(RDBStorage):
    """Optuna's RDB heartbeats, plus: a RUNNING trial that never got a heartbeat is stale after the grace
    period too (a sweeper killed between creating a trial and its first heartbeat leaves one)."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = set(super()._get_stale_trial_ids(study_id))
        beating = optuna_private.rdb_trials_with_heartbeat(self, study_id)
        limit = datetime.now() - timedelta(seconds=_grace(self))
        for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            tid = optuna_private.trial_id(t)
            if tid not in beating and t.datetime_start is not None and t.datetime_start < limit:
                stale.add(tid)
        return sorted(stale)


class HeartbeatJournalStorage(JournalStorage, optuna_private.heartbeat_base()):
    """Journal storage with Optuna's heartbeat protocol: the beat is the trial system attribute
    `heartbeat` (epoch seconds), so `fail_stale_trials` and `get_heartbeat_thread` work unchanged."""

    def __init__(self, backend, heartbeat_interval: int, grace_period: int, callback=None) -> None:
        super().__init__(backend)
        self.heartbeat_interval, self.grace_period = heartbeat_interval, grace_period
        self.heartbeat_stale_trial_callback = callback

    def record_heartbeat(self, trial_id: int) -> None:
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            self.set_trial_system_attr(trial_id, "heartbeat", time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now, grace = time.time(), _grace(self)
        stale = []
        for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = _number(t.system_attrs.get("heartbeat"))
            if beat is None:
                beat = t.datetime_start.timestamp() if t.datetime_start else now
            if now - float(beat) > grace:
                stale.append(optuna_private.trial_id(t))
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self):
        return self.heartbeat_stale_trial_callback


def _number(v: object) -> float | None:
    """A number read from a trial's attributes (storage data): None unless a finite int or float."""
    ok = isinstance(v, int | float) and not isinstance(v, bool) and v == v and abs(v) != float("inf")
    return float(v) if ok else None


def _grace(storage) -> int:
    storage = optuna_private.unwrap_storage(storage)
    return storage.grace_period if storage.grace_period is not None else 2 * storage.heartbeat_interval


class RetryLostTrial:
    """`RetryFailedTrialCallback` for a trial whose sweeper died: the configuration (params, `enqueued`
    marker) is queued again as a new trial, without the dead attempt's run dir, host and pid.

    A shape extreme is queued again whatever its retry count: every study must see its extremes, and losing
    its sweeper is never the configuration's fault. Other configurations are retried up to `max_retry` times.
    """

    def __init__(self, max_retry: int) -> None:
        # Optuna 4.9 renamed RetryFailedTrialCallback; the old name still works (deprecated) before that.
        retry_cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
        with quiet_experimental():
            self.retry = (retry_cls or optuna.storages.RetryFailedTrialCallback)(max_retry=max_retry)
            self.retry_extreme = (retry_cls or optuna.storages.RetryFailedTrialCallback)(max_retry=None)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        fresh = copy.deepcopy(trial)
        fresh.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in ATTEMPT_ATTRS}
        with quiet_experimental():
            (self.retry_extreme if trial.user_attrs.get("enqueued") == "extreme" else self.retry)(
                study, fresh
            )
        log.warning(
            "%s: trial %d was RUNNING with no live sweeper; marked FAIL and queued again",
            study.study_name,
            trial.number,
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """FAIL the RUNNING trials whose sweeper is gone, and queue each again (once, whoever gets there first).

    Gone = no heartbeat for the grace period (any host; Optuna's `fail_stale_trials` rule, plus trials that
    never got a heartbeat), or, at once, a sweeper process on this host that no longer exists.
    Returns the numbers of the trials this call failed.
    """
    storage, study_id = optuna_private.storage(study), optuna_private.study_id(study)
    stale: dict[int, str] = {}
    if optuna_private.heartbeat_enabled(storage):
        for tid in optuna_private.stale_trial_ids(storage, study_id):
            stale[tid] = f"stale: no sweeper heartbeat for {_grace(storage)} s"
    for t in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        host, pid = t.user_attrs.get("sweeper_host"), _number(t.user_attrs.get("sweeper_pid"))
        pid = int(pid) if pid is not None and pid == int(pid) and 0 < pid < 1 << 22 else None  # a real pid
        if host == HOST and pid is not None and pid != os.getpid() and not _pid_alive(pid):
            stale.setdefault(optuna_private.trial_id(t), f"stale: sweeper process {pid} on {host} died")
    failed = []
    beating = optuna_private.heartbeat_enabled(storage)
    callback = storage.get_heartbeat_stale_trial_callback() if beating else None
    for tid, reason in stale.items():
        try:
            storage.set_trial_user_attr(tid, "fail_reason", reason)
            if not storage.set_trial_state_values(tid, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another sweeper recovered it first
        frozen = storage.get_trial(tid)
        failed.append(frozen.number)
        if callback is not None:
            callback(study, copy.deepcopy(frozen))
    return failed


def lose(study: optuna.Study, trials: list, reason: str) -> None:
    """FAIL `trials` (RUNNING, lost with their process, `reason` starting with "stale") and queue each
    again through the storage's retry callback, as for a lost sweeper; never left RUNNING."""
    storage, beating = (
        optuna_private.storage(study),
        optuna_private.heartbeat_enabled(optuna_private.storage(study)),
    )
    callback = storage.get_heartbeat_stale_trial_callback() if beating else None
    for t in trials:
        tid = optuna_private.trial_id(t)
        try:
            storage.set_trial_user_attr(tid, "fail_reason", reason)
            if not storage.set_trial_state_values(tid, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        if callback is not None:
            callback(study, copy.deepcopy(storage.get_trial(tid)))


def failed_count(trials: list[FrozenTrial]) -> int:
    """FAIL trials that count towards max_failure_rate: a trial lost with its sweeper is not the trial's fault."""
    return sum(
        t.state == TrialState.FAIL and not str(t.user_attrs.get("fail_reason", "")).startswith("stale")
        for t in trials
    )


@contextlib.contextmanager
def quiet_experimental() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield
