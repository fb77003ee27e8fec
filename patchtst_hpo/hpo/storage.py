"""Opening Optuna storages (SQLite, PostgreSQL/MySQL, journal file) without importing Lightning.

The sweeper, the job-side pruning callback and the report all open studies through here. The sweeper also
gets heartbeats from here (RDB: Optuna's own; journal: the same protocol on a trial system attribute), the
recovery of trials whose sweeper died, and the password handling that keeps secrets out of job folders.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import logging
import os
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.trial import FrozenTrial, TrialState

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.hpo import optuna_private

log = logging.getLogger(__name__)

HOST = socket.gethostname()
# Trial attributes that belong to one attempt, not to the configuration: a retry starts without them.
ATTEMPT_ATTRS = ("sweeper_host", "sweeper_pid", "run_dir", "fail_reason", "prune_reason", "epochs")


@contextlib.contextmanager
def storage_lock(url: str | None) -> Iterator[None]:
    """Serialise schema and study creation between processes sharing a local SQLite file.

    Two sweepers that create the same new database at once otherwise race on Optuna's schema tables.
    Server databases (PostgreSQL, MySQL) and journal files handle this themselves.
    """
    if not url or not url.startswith("sqlite:///"):
        yield
        return
    path = Path(url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


# ---- secrets ----


def split_password(url: str | None) -> tuple[str | None, str | None]:
    """(the URL without its password, the password or None). Journal paths have none.

    Only PostgreSQL has a standard out-of-band channel (PGPASSWORD, ~/.pgpass) that every job inherits, so
    a password in any other URL is refused rather than copied into job folders.
    """
    if url is None or url.startswith("journal:") or "://" not in url:
        return url, None
    from sqlalchemy.engine import URL, make_url

    u = make_url(url)
    if u.password is None:
        return url, None
    if u.get_backend_name() != "postgresql":
        raise ConfigError(
            f"hydra.sweeper.storage={redact(url)}: a password in a {u.get_backend_name()} URL would be "
            f"copied into every job's folder; use the driver's option file (e.g. ?read_default_file=~/.my.cnf)"
        )
    public = URL.create(u.drivername, u.username, None, u.host, u.port, u.database, u.query)
    return public.render_as_string(hide_password=False), str(u.password)


def redact(url: str | None) -> str | None:
    """The URL as it may be printed or written: the password replaced by ***."""
    if url is None or url.startswith("journal:") or "://" not in url:
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: show the scheme only
        return url.split("://", 1)[0] + "://***"


def _rdb_url(url: str) -> str:
    """`postgresql://` works with whichever driver is installed (the `postgres` extra ships psycopg 3)."""
    if not url.startswith("postgresql://"):
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    if importlib.util.find_spec("psycopg") is None:
        raise ConfigError(
            f"hydra.sweeper.storage={redact(url)} needs a PostgreSQL driver: pip install -e '.[postgres]'"
        )
    return "postgresql+psycopg://" + url.removeprefix("postgresql://")


# ---- heartbeats ----


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
            beat = t.system_attrs.get("heartbeat")
            if beat is None:
                beat = t.datetime_start.timestamp() if t.datetime_start else now
            if now - float(beat) > grace:
                stale.append(optuna_private.trial_id(t))
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self):
        return self.heartbeat_stale_trial_callback


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
        with _quiet_experimental():
            self.retry = (retry_cls or optuna.storages.RetryFailedTrialCallback)(max_retry=max_retry)
            self.retry_extreme = (retry_cls or optuna.storages.RetryFailedTrialCallback)(max_retry=None)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        fresh = copy.deepcopy(trial)
        fresh.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in ATTEMPT_ATTRS}
        with _quiet_experimental():
            (self.retry_extreme if trial.user_attrs.get("enqueued") == "extreme" else self.retry)(
                study, fresh
            )
        log.warning(
            "%s: trial %d was RUNNING with no live sweeper; marked FAIL and queued again",
            study.study_name,
            trial.number,
        )


def open_storage(
    url: str | None,
    locked: bool = False,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = None,
) -> BaseStorage:
    """An Optuna storage from a URL: sqlite/postgresql/mysql (RDB) or `journal:<path>` (journal file).

    With `heartbeat_interval` (the sweeper's side) the storage records heartbeats and stale trials are
    failed after `grace_period` s and queued again up to `max_retry` times. Jobs open it without.
    `locked=True` means the caller already holds `storage_lock(url)`. `None` = a new in-memory storage.
    """
    if url is None:
        return optuna.storages.InMemoryStorage()
    beat = {}
    if heartbeat_interval is not None:
        beat = {"heartbeat_interval": int(heartbeat_interval), "grace_period": int(grace_period or 0) or None}
        beat["callback"] = RetryLostTrial(int(max_retry if max_retry is not None else 3))
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url.removeprefix("journal:")).expanduser()
        if not path.is_absolute():
            raise ConfigError(
                f"hydra.sweeper.storage={url}: give an absolute path, journal:/shared/optuna.log"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = JournalFileBackend(str(path))
        if beat:
            return HeartbeatJournalStorage(
                backend, beat["heartbeat_interval"], beat["grace_period"], beat["callback"]
            )
        return JournalStorage(backend)
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    rdb_kwargs = {}
    if beat:
        rdb_kwargs = {
            "heartbeat_interval": beat["heartbeat_interval"],
            "grace_period": beat["grace_period"],
            "heartbeat_stale_trial_callback": beat["callback"],
        }
    with contextlib.nullcontext() if locked else storage_lock(url):
        return _rdb_storage(_rdb_url(url), kwargs, rdb_kwargs)


def _rdb_storage(url: str, engine_kwargs: dict, rdb_kwargs: dict, tries: int = 6) -> RDBStorage:
    """Sweepers started together on an empty server database race to create Optuna's tables (a unique
    violation in the catalogue for the loser); the schema is then there, so the loser just tries again."""
    import random

    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(tries):
        try:
            with _quiet_experimental(), _storage_errors(url):
                return HeartbeatRDBStorage(url, engine_kwargs=engine_kwargs, **rdb_kwargs)
        except (IntegrityError, ProgrammingError) as e:
            if attempt == tries - 1 or "already exists" not in str(e) and "duplicate key" not in str(e):
                raise
            log.info("storage schema created concurrently by another process; retrying")
            time.sleep(0.2 + random.random())
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _storage_errors(url: str) -> Iterator[None]:
    """What goes wrong opening an RDB storage, as one `ConfigError` naming the (redacted) URL and the fix."""
    from sqlalchemy.exc import (
        ArgumentError,
        DatabaseError,
        IntegrityError,
        NoSuchModuleError,
        ProgrammingError,
    )

    shown = f"storage {redact(url)}"
    try:
        yield
    except (IntegrityError, ProgrammingError):
        raise  # a concurrent schema creation: the caller retries
    except (NoSuchModuleError, ArgumentError) as e:
        raise ConfigError(
            f"{shown}: not a storage URL Optuna can open ({' '.join(str(e).split())}); use sqlite:///ABS/PATH.db, "
            f"postgresql://user@host/db or journal:/ABS/PATH.log"
        ) from e
    except ImportError as e:
        raise ConfigError(
            f"{shown}: its database driver is not installed ({e.name or e}); install it (e.g. pip install "
            f"pymysql and use mysql+pymysql://...), or use sqlite:/// or journal:"
        ) from e
    except DatabaseError as e:
        what = " ".join(str(getattr(e, "orig", e)).split())[:200]
        fix = (
            "the file is not an SQLite database (truncated or overwritten): restore it from a copy, or use a new "
            "file (finished trials live only in the old one)"
            if url.startswith("sqlite")
            else "check the server, the user and the database name"
        )
        raise ConfigError(f"{shown}: cannot be opened ({what}); {fix}") from e


@contextlib.contextmanager
def _quiet_experimental() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


# ---- recovery ----


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
        host, pid = t.user_attrs.get("sweeper_host"), t.user_attrs.get("sweeper_pid")
        if host == HOST and pid is not None and int(pid) != os.getpid() and not _pid_alive(int(pid)):
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


def failed_count(trials: list[FrozenTrial]) -> int:
    """FAIL trials that count towards max_failure_rate: a trial lost with its sweeper is not the trial's fault."""
    return sum(
        t.state == TrialState.FAIL and not str(t.user_attrs.get("fail_reason", "")).startswith("stale")
        for t in trials
    )
