"""Synthetic seed x row predictions with exactly the seed-level test AUCs a test asks for.

Scores are `d * y + noise`; the noise of every model shares a part (hard days are hard for all models, as in
a real test period) and has its own. For fixed noise the AUC rises monotonically with d, so d is solved by
bisection until the realised AUC is the asked one (to ~1e-5, the resolution of an AUC on ~700 rows).
"""

from __future__ import annotations

import numpy as np

from patchtst_hpo import metrics
from patchtst_hpo.analysis import uncertainty
from patchtst_hpo.analysis.verdict import BudgetPoint

SIZES = [1e5, 2e6, 2e7, 2e8, 2e9]
NAMES = ["tiny", "2M", "20M", "200M", "2B"]


def with_auc(y: np.ndarray, noise: np.ndarray, target: float) -> np.ndarray:
    lo, hi = -5.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if metrics.auc(y, mid * y + noise) < target else (lo, mid)
    return (lo + hi) / 2 * y + noise


def study(aucs: list[list[float]], rows: int = 700, shared: float = 0.5, seed: int = 0):
    """(y, [p of each budget as [seeds, rows]]) with seed-level AUCs `aucs[budget][seed]`."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.3).astype(np.float64)
    common = rng.normal(0, 1, rows)
    out = []
    for budget in aucs:
        own = rng.normal(0, 1, rows)
        ps = []
        for a in budget:
            noise = np.sqrt(shared) * common + np.sqrt((1 - shared) / 2) * (own + rng.normal(0, 1, rows))
            ps.append(with_auc(y, noise, a))
        out.append(np.stack(ps))
    return y, out


def points(y, ps, n_boot: int = 400, block: int = 1, seed: int = 0, sizes=SIZES) -> list[BudgetPoint]:
    bs = uncertainty.Bootstrap.for_rows(len(y), block, n_boot, seed)
    return [BudgetPoint(NAMES[i], sizes[i], bs.auc(y, p)) for i, p in enumerate(ps)]
