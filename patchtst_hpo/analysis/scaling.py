"""Scaling-law fit `L(N) = E + A * N^-alpha` (E >= 0, A >= 0) across budgets, with its bootstrap interval.

The fit profiles alpha on a fine grid and solves E, A by least squares at each value (variable
projection), which is stable with the few points a budget study gives. One point per budget: its confirmed
winner's loss. The interval refits every replicate of the hierarchical bootstrap (analysis/uncertainty.py),
so it carries the test set's and the seeds' noise. alpha < 0 means the loss grows with size; A = 0 means
flat, where alpha is undetermined and reported as 0. Whether a fit may be made at all and what it means in
words is analysis/verdict.py's job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from patchtst_hpo import metrics

ALPHAS = np.round(np.arange(-1.0, 2.0 + 1e-9, 0.002), 6)
FREE_PARAMETERS = 3  # E, A, alpha


@dataclass
class Fit:
    E: float
    A: float
    alpha: float
    alpha_ci: tuple[float, float]
    n_points: int
    at_bound: bool = False  # alpha itself is an end of ALPHAS: the data do not pin it (no curve is drawn)
    ci_open: bool = False  # an end of the interval is an end of ALPHAS: it bounds alpha on one side only

    @property
    def flat(self) -> bool:
        return self.A == 0.0

    def predict(self, n: np.ndarray) -> np.ndarray:
        return self.E + self.A * np.asarray(n, dtype=np.float64) ** -self.alpha

    def as_dict(self) -> dict:
        return {
            "E": self.E,
            "A": self.A,
            "alpha": self.alpha,
            "alpha_ci": list(self.alpha_ci),
            "n_points": self.n_points,
            "at_bound": self.at_bound,
            "ci_open": self.ci_open,
        }


def _fit_many(n: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(E, A, alpha) per row of `ys` [fits, points] minimising squared error with E >= 0 and A >= 0.

    N is scaled by its geometric mean for conditioning; a row no power law fits better than a flat line gets
    A = 0, alpha = 0 (E = its mean).
    """
    scale = np.exp(np.mean(np.log(n)))
    alphas = ALPHAS[ALPHAS != 0]
    f = (n / scale)[None, :] ** -alphas[:, None]  # [alphas, points]
    fc = f - f.mean(axis=1, keepdims=True)
    yc = ys - ys.mean(axis=1, keepdims=True)  # [fits, points]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        a = (yc @ fc.T) / (fc**2).sum(axis=1)  # [fits, alphas]
        e = ys.mean(axis=1, keepdims=True) - a * f.mean(axis=1)
        a0 = (ys @ f.T) / (f**2).sum(axis=1)  # E pinned at its bound 0
        neg = e < 0
        a, e = np.where(neg, a0, a), np.where(neg, 0.0, e)
        pred = e[:, :, None] + a[:, :, None] * f[None, :, :]
        sse = ((pred - ys[:, None, :]) ** 2).sum(axis=2)
    sse[~(a >= 0) | ~np.isfinite(sse)] = np.inf
    i = np.argmin(sse, axis=1)
    rows = np.arange(len(ys))
    flat = ~(sse[rows, i] < (yc**2).sum(axis=1) - 1e-15)
    out = np.stack([e[rows, i], a[rows, i] * scale ** alphas[i], alphas[i]], axis=1)
    out[flat] = np.stack([ys[flat].mean(axis=1), np.zeros(flat.sum()), np.zeros(flat.sum())], axis=1)
    return out


def fit_point(n: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(E, A, alpha) of one set of points."""
    e, a, alpha = _fit_many(np.asarray(n, dtype=np.float64), np.asarray(y, dtype=np.float64)[None, :])[0]
    return float(e), float(a), float(alpha)


def fit(n: np.ndarray, y: np.ndarray, y_reps: np.ndarray, level: float = 0.95) -> Fit:
    """The fit to one loss per size (`y`) and its alpha interval over the bootstrap replicates `y_reps`
    [replicates, sizes] (the same replicate of every budget in one row: paired)."""
    n, y = np.asarray(n, dtype=np.float64), np.asarray(y, dtype=np.float64)
    e, a, alpha = fit_point(n, y)
    reps = np.asarray(y_reps, dtype=np.float64)
    reps = reps[np.isfinite(reps).all(axis=1)]
    alphas = np.concatenate([_fit_many(n, reps[i : i + 250])[:, 2] for i in range(0, len(reps), 250)] or [[]])
    lo, hi = metrics.quantile_ci(list(alphas), level)
    edges = np.array([ALPHAS[0], ALPHAS[-1]])
    at_bound = bool(np.isclose(alpha, edges).any())
    ci_open = bool(any(np.isclose(v, edges).any() for v in (lo, hi)))
    return Fit(e, a, alpha, (lo, hi), len(n), at_bound, ci_open)
