"""Checks of the objective: a metric the run logs on val, with the direction that improves it."""

from __future__ import annotations

from omegaconf import DictConfig, ListConfig

from patchtst_hpo.metric_names import DIRECTIONS
from patchtst_hpo.validation.values import bad

# Keys of metrics.json a multi-objective sweep may use beside val/<metric> (its later objectives).
RESULT_KEYS = ("params", "trainable_params", "train_flops", "epochs", "steps", "wall_seconds", "fit_seconds")
# Logged on val but not an objective: why, and what to use instead.
NOT_OBJECTIVES = {
    "loss": "is the training loss on val, not in the evaluated results; use val/log_loss (same cross-entropy)",
    "positive_rate": "is the share of positive labels, a property of the data, not of the model",
    "threshold": "is the F1 threshold chosen on val, not a score",
    "n": "is the number of val samples",
}


def _objective_pairs(cfg: DictConfig) -> list[tuple[str, str]]:
    metric, direction = cfg.objective.metric, cfg.objective.direction
    if not isinstance(metric, ListConfig):
        return [(str(metric), str(direction))]
    directions = list(direction) if isinstance(direction, ListConfig) else [direction] * len(metric)
    if len(directions) != len(metric):
        raise bad("objective.direction", direction, f"give one direction per metric ({len(metric)})")
    return [(str(m), str(d)) for m, d in zip(metric, directions, strict=True)]


def check_objective(cfg: DictConfig) -> None:
    """The objective is a metric the run logs on val (test is held out), with the direction that improves it."""
    pairs = _objective_pairs(cfg)
    for i, (metric, direction) in enumerate(pairs):
        if direction not in ("maximize", "minimize"):
            raise bad("objective.direction", direction, "use maximize or minimize")
        split, _, name = metric.partition("/")
        if i and not name and metric in RESULT_KEYS:
            continue  # a later objective of a multi-objective sweep may be a result key such as params
        if split == "test":
            raise bad(
                "objective.metric",
                metric,
                f"optimising on the test period is leakage (test is held out for the final confirmation); "
                f"use val/{name}",
            )
        if split != "val" or not name:
            raise bad("objective.metric", metric, "use val/<name>, e.g. val/auc")
        if name in NOT_OBJECTIVES:
            raise bad("objective.metric", metric, NOT_OBJECTIVES[name])
        names = sorted(k for k in DIRECTIONS if k not in NOT_OBJECTIVES)
        if name not in DIRECTIONS:
            raise bad("objective.metric", metric, f"not a logged metric; use val/<name> with name in {names}")
        if DIRECTIONS[name] != direction:
            raise bad(
                "objective.direction",
                direction,
                f"{metric} is better when {'higher' if DIRECTIONS[name] == 'maximize' else 'lower'}; "
                f"use objective.direction={DIRECTIONS[name]}",
            )
