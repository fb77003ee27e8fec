"""A finished Hydra job as an Optuna outcome: (state, values, reason), read without re-raising its exception."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus

from patchtst_hpo.hpo import optuna_private


def _number(v: Any) -> str | None:
    """Why `v` is not a finite objective value (None when it is one)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return f"{type(v).__name__}, not a number"
    return None if math.isfinite(v) else str(v)


def of_job(ret: JobReturn, n_objectives: int = 1) -> tuple[optuna.trial.TrialState, list[float] | None, str]:
    """(state, values, reason) of a finished job; never touches `ret.return_value` of a failed job.

    One objective: the task returns a number. Several: a sequence of that many numbers (one per direction).
    """
    State = optuna.trial.TrialState
    if ret.status == JobStatus.COMPLETED:
        v = optuna_private.job_value(ret)
        if n_objectives == 1:
            vs = [v]
        elif isinstance(v, Sequence) and not isinstance(v, str) and len(v) == n_objectives:
            vs = list(v)
        else:
            return State.FAIL, None, f"objective is {v!r}, not a sequence of {n_objectives} numbers"
        why = next((w for x in vs if (w := _number(x))), None)
        if why:
            return State.FAIL, None, f"objective is {why}"
        return State.COMPLETE, [float(x) for x in vs], ""
    exc = optuna_private.job_value(ret)
    if isinstance(exc, optuna.TrialPruned):
        return State.PRUNED, None, str(exc)
    return State.FAIL, None, f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:2000]


def disk_full(reason: str, where) -> bool:
    """A failure that is the disk's, not the trial's: ENOSPC / EDQUOT in the reason (torch's stream writer
    says "file write failed"), or less than 1 MiB left where the sweep writes."""
    import os

    said = any(w in reason for w in ("[Errno 28]", "No space left", "[Errno 122]", "file write failed"))
    try:
        st = os.statvfs(where)
        nearly = st.f_bavail * st.f_frsize < (1 << 20)
    except OSError:
        nearly = False
    return said or nearly


def stop_on_full_disk(study: str, trials: list, reason: str, where) -> Exception:
    """The sweep's one-line stop on a full disk, after removing what the failed trials wrote half-way
    (checkpoints, temporary files): they are FAIL, and a half-written checkpoint is never resumed."""
    import contextlib
    import glob
    import os

    from patchtst_hpo.errors import PatchTSTHPOError

    removed = 0
    for t in trials:
        run_dir = t.user_attrs.get("run_dir")
        if not run_dir:
            continue
        for pattern in ("**/*.ckpt", "**/.*.tmp", "**/*.tmp"):
            for f in glob.glob(os.path.join(glob.escape(run_dir), pattern), recursive=True):
                with contextlib.suppress(OSError):
                    os.unlink(f)
                    removed += 1
    return PatchTSTHPOError(
        f"study {study}: the disk under {where} is full ({' '.join(reason.split())[:200]}); trial(s) "
        f"{[t.number for t in trials]} failed and {removed} partial file(s) removed. Free space there and "
        f"re-run the same command: finished trials are kept"
    )
