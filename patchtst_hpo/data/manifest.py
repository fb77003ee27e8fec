"""Versioned, checksummed manifests of raw and processed datasets (JSON files beside the data).

A manifest maps a dataset name to its versions, oldest first. Each entry holds at least `version`,
`path` (relative to the data root), `sha256` of the file and `created`. Writes hold an exclusive file
lock and go through a temporary file plus rename, so concurrent trials and crashes never leave a
half-written manifest. Files are never overwritten: a new content is a new version with a new path.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shlex
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from patchtst_hpo.atomic import atomic_write_bytes
from patchtst_hpo.errors import DataError
from patchtst_hpo.paths import DATA_DIR

Entry = dict[str, Any]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


class Manifest:
    """One manifest file (`<root>/raw/manifest.json` or `<root>/processed/manifest.json`)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.root = self.path.parent.parent  # the data root that entry paths are relative to

    def load(self) -> dict[str, list[Entry]]:
        if not self.path.exists():
            return {}
        try:
            doc = json.loads(self.path.read_text())
            return doc["datasets"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DataError(
                f"{self.path}: not a valid manifest ({e}); restore it from git or delete it"
            ) from e

    def _save(self, datasets: dict[str, list[Entry]]) -> None:
        text = json.dumps({"schema": 1, "datasets": datasets}, indent=2, sort_keys=True) + "\n"
        atomic_write_bytes(self.path, text.encode())

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, list[Entry]]]:
        """Exclusive read-modify-write: yields the datasets dict and saves it if the block succeeds."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            datasets = self.load()
            yield datasets
            self._save(datasets)

    def add_version(
        self,
        name: str,
        matches: Callable[[Entry], bool],
        blob: bytes,
        rel: str,
        fields: Entry,
        on_match: Callable[[Entry], str] | None = None,
    ) -> tuple[Entry, str | None]:
        """The one versioned write: under the lock, the first version of `name` that `matches` (then
        `on_match(entry)` runs, still locked, e.g. to restore its file), else `blob` written to `rel` (a
        template with `{version}`) as version N+1 with `fields`. Returns (entry, None) for a new version,
        (the matching entry, on_match's status or "same") otherwise."""
        with self.locked() as datasets:
            versions = datasets.setdefault(name, [])
            for e in versions:
                if matches(e):
                    return e, on_match(e) if on_match else "same"
            version = versions[-1]["version"] + 1 if versions else 1
            path = rel.replace("{version}", str(version))
            atomic_write_bytes(self.root / path, blob)
            entry = {
                "version": version,
                "path": path,
                "sha256": sha256_file(self.root / path),
                **fields,
                "created": now_iso(),
            }
            versions.append(entry)
        return entry, None

    def versions(self, name: str) -> list[Entry]:
        return self.load().get(name, [])

    def get(self, name: str, version: int | str = "latest") -> Entry:
        """The entry of `name` at `version` (an int or "latest"); errors list what exists."""
        datasets = self.load()
        if name not in datasets:
            known = ", ".join(sorted(datasets)) or "none"
            raise DataError(
                f"dataset {name!r} is not in {self.path} (registered: {known}); "
                f"ingest it with `{self.command()} ingest FILE --name {name}`"
            )
        entries = datasets[name]
        if version in (None, "latest"):
            return entries[-1]
        for e in entries:
            if e["version"] == int(version):
                return e
        raise DataError(
            f"dataset {name!r} has no version {version} in {self.path}; versions: "
            f"{[e['version'] for e in entries]}"
        )

    def file(self, entry: Entry) -> Path:
        return self.root / entry["path"]

    def command(self) -> str:
        """The data CLI for this manifest's root (`--root` only when it is not the repository's data/)."""
        default = DATA_DIR.resolve()
        root = "" if self.root.resolve() == default else f" --root {shlex.quote(str(self.root))}"
        return f"python -m patchtst_hpo.data{root}"

    def repair_hint(self, entry: Entry) -> str:
        """The command that puts a missing or altered file of `entry` back (tested by running it)."""
        cmd = self.command()
        if self.path.parent.name == "processed":
            inputs = entry.get("inputs") or []
            if "tier" not in entry or not inputs or "panel" in entry:
                return "delete the file and use the dataset again: it is rebuilt on first use"
            vix = f" --vix {shlex.quote(inputs[1]['name'])}" if len(inputs) > 1 else ""
            return (
                f"rebuild it with `{cmd} build --ohlcv {shlex.quote(inputs[0]['name'])} --version "
                f"{inputs[0]['version']}{vix} --tier {entry['tier']} --force`"
            )
        args = entry.get("ingest_args") or {}
        opts = "".join(f" --value-column {shlex.quote(c)}" for c in args.get("value_columns") or [])
        for key in ("date_column", "date_format"):
            if args.get(key) not in (None, "date"):
                opts += f" --{key.replace('_', '-')} {shlex.quote(str(args[key]))}"
        source = str(entry.get("source", ""))
        name = shlex.quote(entry["name"])
        if source and Path(source).is_file():
            return (
                f"re-ingest its source (same content: the file is rewritten) with "
                f"`{cmd} ingest {shlex.quote(source)} --name {name}{opts}`"
            )
        return (
            f"restore it (e.g. `git checkout -- {self.root / entry['path']}`), or re-ingest the original file "
            f"(source: {source or 'unknown'}) with `{cmd} ingest FILE --name {name}{opts}`"
        )

    def check(self, entry: Entry) -> Path:
        """The entry's file, after proving its sha256 still matches the manifest."""
        path = self.file(entry)
        if not path.exists():
            raise DataError(f"{path} is registered in {self.path} but missing; {self.repair_hint(entry)}")
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            raise DataError(
                f"{path} changed since it was registered in {self.path} (sha256 {actual[:12]} != "
                f"{entry['sha256'][:12]}); {self.repair_hint(entry)}"
            )
        return path

    def verify(self) -> list[str]:
        """Problems found by re-hashing every registered file (empty list = all good)."""
        problems = []
        for name, entries in sorted(self.load().items()):
            for e in entries:
                try:
                    self.check(e)
                except DataError as err:
                    problems.append(f"{name} v{e['version']}: {err}")
        return problems
