"""Opening Optuna storages (SQLite, PostgreSQL/MySQL, journal file) without importing Lightning.

The sweeper, the job-side pruning callback and the report all open studies through here.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

import optuna


@contextlib.contextmanager
def storage_lock(url: str) -> Iterator[None]:
    """Serialise schema and study creation between processes sharing a local SQLite file.

    Two sweepers that create the same new database at once otherwise race on Optuna's schema tables.
    Server databases (PostgreSQL, MySQL) handle this themselves.
    """
    if not url.startswith("sqlite:///"):
        yield
        return
    path = Path(url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def open_storage(url: str, locked: bool = False) -> optuna.storages.BaseStorage:
    """An Optuna storage from a URL: sqlite/postgresql/mysql (RDB) or `journal:<path>` (journal file).

    `locked=True` means the caller already holds `storage_lock(url)`.
    """
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    if locked:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    with storage_lock(url):
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
