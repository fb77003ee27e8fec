"""What a sweep writes: each study's optimization_results.yaml, the Pareto front, the summary table.

As hydra-optuna-sweeper: `name`, `best_params`, `best_value` (or `solutions`, the Pareto front of a
multi-objective study); plus trial counts by state, and the planner's fields (this project: arch, params).
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

import optuna
from omegaconf import OmegaConf

from patchtst_hpo.atomic import write_text
from patchtst_hpo.hpo.planner import Planner, StudyPlan

log = logging.getLogger(__name__)


def _yaml(path: Path, data: dict) -> None:
    write_text(path, OmegaConf.to_yaml(OmegaConf.create(data)))


def summarise(
    study: optuna.Study,
    plan: StudyPlan,
    planner: Planner,
    *,
    sweep_dir: Path,
    storage: str,
    metric: Any,
    direction: Any,
) -> dict:
    """Write `study`'s optimization_results.yaml (under its plan's out_dir); return its summary row."""
    trials = study.get_trials(deepcopy=False)
    count = {s.name: sum(t.state == s for t in trials) for s in optuna.trial.TrialState}
    row: dict[str, Any] = {
        "study": study.study_name,
        **{k: str(v) for k, v in plan.values.items()},
        "complete": count["COMPLETE"],
        "pruned": count["PRUNED"],
        "failed": count["FAIL"],
    }
    result: dict[str, Any] = {
        "name": "optuna",  # upstream's value: tools that read these files check it
        "sweeper": "budget_optuna",
        "study": study.study_name,
        "storage": storage,
        "metric": metric,
        "direction": direction,
        "trials": count,
    }
    if count["COMPLETE"] and len(study.directions) == 1:
        best = study.best_trial
        result.update(
            {
                "best_value": best.value,
                "best_trial": best.number,
                "best_params": best.params,
                "run_dir": best.user_attrs.get("run_dir"),
            }
        )
        row.update({"best_value": round(best.value, 5), "best_trial": best.number})
        in_result, in_row = planner.best_fields(plan, best)
        result.update(in_result)
        row.update(in_row)
        row["run_dir"] = best.user_attrs.get("run_dir")
    elif count["COMPLETE"]:
        front = sorted(study.best_trials, key=lambda t: t.number)
        result["solutions"] = [solution(study, t) for t in front]
        row["pareto_front"] = len(front)
    _yaml(sweep_dir / plan.out_dir / "optimization_results.yaml", result)
    return row


def solution(study: optuna.Study, t: optuna.trial.FrozenTrial) -> dict:
    """One point of a Pareto front: values in direction order, params, and where it ran."""
    sol = {"study": study.study_name, "trial": t.number, "values": list(t.values), "params": t.params}
    if "params" in t.user_attrs:
        sol["n_params"] = t.user_attrs["params"]
    sol["run_dir"] = t.user_attrs.get("run_dir")
    return sol


def write_front(
    studies: list[optuna.Study], directions: list[str], *, sweep_dir: Path, metric: Any, direction: Any
) -> None:
    """Multi-objective over several studies (e.g. budgets): the Pareto front of all their trials."""
    sign = [1.0 if d == "minimize" else -1.0 for d in directions]
    points = [
        (t, study, [s * v for s, v in zip(sign, t.values, strict=True)])
        for study in studies
        for t in study.best_trials
    ]

    def dominated(a: list[float]) -> bool:
        return any(
            all(x <= y for x, y in zip(b, a, strict=True)) and any(x < y for x, y in zip(b, a, strict=True))
            for _, _, b in points
        )

    front = [solution(study, t) for t, study, key in points if not dominated(key)]
    _yaml(sweep_dir / "pareto_front.yaml", {"metric": metric, "direction": direction, "solutions": front})
    log.info(
        "Pareto front over %d studies: %d trials -> %s",
        len(studies),
        len(front),
        sweep_dir / "pareto_front.yaml",
    )


def write_table(rows: list[dict], sweep_dir: Path) -> None:
    """summary.csv (one row per study) in the sweep dir, also printed as a table (the sweep's output)."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    write_text(sweep_dir / "summary.csv", buf.getvalue())
    widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in keys if k != "run_dir"}
    lines = ["  ".join(k.ljust(w) for k, w in widths.items())]
    lines += ["  ".join(str(r.get(k, "")).ljust(w) for k, w in widths.items()) for r in rows]
    print("\n".join(lines))
    print(f"summary: {sweep_dir / 'summary.csv'}")
