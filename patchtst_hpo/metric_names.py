"""Metric names a run logs (as val/<name> and test/<name>) with the direction that improves each.

No imports: `validation` checks `objective.metric` against these without loading scipy (metrics.py does).
"""

DIRECTIONS = {
    "auc": "maximize",
    "log_loss": "minimize",
    "brier": "minimize",
    "accuracy": "maximize",
    "precision": "maximize",
    "recall": "maximize",
    "f1": "maximize",
    "pred_std": "maximize",
    "loss": "minimize",
    "positive_rate": "maximize",
}
