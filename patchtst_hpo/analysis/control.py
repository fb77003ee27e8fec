"""The shuffled-label control: the best budget winner refit with data.shuffle_labels=true (training labels
permuted) must score test AUC ~0.5; more means the inputs leak the labels (future data, windows crossing
split boundaries)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna

from patchtst_hpo.analysis import confirm


def run(cfg, r, out: Path, storage) -> None:
    """Fills r.control (and a warning when the control fails)."""
    c = cfg.shuffled_control
    win = (
        r.top[r.top["rank"] == 1]
        .sort_values("val_objective", ascending=r.group.first.get("direction") == "minimize")
        .iloc[0]
    )
    params = optuna.load_study(study_name=win["study"], storage=storage).trials[int(win["trial"])].params
    overrides = [
        *confirm.stored(cfg, r.group.attrs[win["study"]], params, f"study {win['study']!r}"),
        "data.shuffle_labels=true",
    ]
    t = r.group.trials
    trial = t[(t["study"] == win["study"]) & (t["number"] == win["trial"])].iloc[0]
    d = out / "control" / win["study"] / str(int(win["trial"]))
    confirm.run(overrides, list(c.seeds), confirm.refit_epochs(trial), d, list(cfg.confirm_overrides))
    runs = confirm.load(d, list(c.seeds))
    a = r.boot.auc(runs[0]["y_test"], np.stack([x["p_test"] for x in runs]))
    ok = abs(a.point - 0.5) <= float(c.tolerance) or a.lo <= 0.5 <= a.hi
    r.control = {
        "budget": win["budget"],
        "arch": win["arch"],
        "auc": a.point,
        "auc_ci_lo": a.lo,
        "auc_ci_hi": a.hi,
        "passed": bool(ok),
    }
    if not ok:
        r.warnings.append(
            f"shuffled-label control: test AUC {a.point:.3f} [{a.lo:.3f}, {a.hi:.3f}] is not ~0.5: check for leakage"
        )
