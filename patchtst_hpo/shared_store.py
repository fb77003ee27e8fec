"""Hydra's ConfigStore, shared instead of copied: what keeps `--help` and composition fast.

Hydra deep-copies its whole config repository, ConfigStore included, each time it lists a group or composes
(`CachingConfigRepository`); `--help` does that ~150 times. Our ConfigStore holds 1,000+ arch entries, the
schemas and Hydra's and the plugins' `hydra/*` entries (~25 ms a copy without the arch group): `--help` took
a minute, then seconds. A group that deep-copies as itself makes each copy free. Sharing is safe:
`ConfigStore.load` deep-copies the one node it returns, and nothing writes to a copy.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore


class SharedGroup(dict):
    """A ConfigStore group that deep copies as itself."""

    def __deepcopy__(self, memo: dict) -> SharedGroup:
        return self


def share_config_store() -> None:
    """Make every top-level group of the ConfigStore a SharedGroup (idempotent). Groups registered later land
    inside these (plugins write under `hydra/`); a new top-level group is shared by the next call."""
    repo = ConfigStore.instance().repo
    for key, group in list(repo.items()):
        if type(group) is dict:
            repo[key] = SharedGroup(group)
