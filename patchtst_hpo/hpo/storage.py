"""Opening Optuna storages (SQLite, PostgreSQL/MySQL, journal file) without importing Lightning.

The sweeper, the job-side pruning callback and the report all open studies through here; with heartbeat
settings (the sweeper) the storage records heartbeats and recovers lost trials (hpo/heartbeat.py). What
cannot be opened (no driver, not a URL, a truncated SQLite file, a journal with a torn last line) is one
`ConfigError` naming the redacted URL (hpo/passwords.py) and the fix; nothing is written to it first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.hpo.heartbeat import (
    HeartbeatJournalStorage,
    HeartbeatRDBStorage,
    RetryLostTrial,
    quiet_experimental,
)
from patchtst_hpo.hpo.passwords import redact

log = logging.getLogger(__name__)


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
        check_journal(path)
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
            with quiet_experimental(), _storage_errors(url):
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


def check_journal(path: Path) -> None:
    """Refuse a journal whose last line is torn (a writer died mid-line) before anything is appended:
    Optuna would append after the torn bytes and the journal would stay unreadable. The message gives the
    command that cuts the torn tail off (the operations before it are kept)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(max(0, size - (1 << 20)))
        tail = f.read()
    cut = tail.rfind(b"\n", 0, len(tail) - 1) + 1 if tail.endswith(b"\n") else tail.rfind(b"\n") + 1
    last = tail[cut:]
    with contextlib.suppress(ValueError):
        if last.endswith(b"\n") and isinstance(json.loads(last), dict):
            return
    keep = size - len(last)
    raise ConfigError(
        f"storage journal:{path}: its last line ({len(last)} bytes at offset {keep}) is torn, so a writer died "
        f"mid-write; nothing was appended. Stop every sweeper on it, then cut the torn line off with "
        f"`truncate -s {keep} {shlex.quote(str(path))}` (the {keep} bytes before it are kept) and re-run"
    )
