"""Scaling-law fit `L(N) = E + A * N^-alpha` (A >= 0) with a bootstrap CI on alpha, and the plots.

The fit profiles alpha on a fine grid and solves E, A by least squares at each value (variable
projection), which is stable with the 3-5 points a budget study gives. alpha < 0 means the loss grows with
size (inverse scaling); A = 0 means flat, where alpha is undetermined and reported as 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHAS = np.round(np.arange(-1.0, 2.0 + 1e-9, 0.002), 6)


@dataclass
class Fit:
    E: float
    A: float
    alpha: float
    alpha_ci: tuple[float, float]
    n_points: int

    @property
    def scaling_detected(self) -> bool:
        lo, hi = self.alpha_ci
        return bool(np.isfinite(lo) and (lo > 0 or hi < 0))

    def verdict(self) -> str:
        lo, hi = self.alpha_ci
        if not np.isfinite(lo):
            return "not enough points for a CI"
        if not self.scaling_detected:
            return f"no scaling detected (alpha 95% CI [{lo:.3f}, {hi:.3f}] includes 0)"
        kind = "loss falls with size" if lo > 0 else "inverse scaling: loss grows with size"
        return f"scaling detected: {kind} (alpha {self.alpha:.3f}, 95% CI [{lo:.3f}, {hi:.3f}])"

    def predict(self, n: np.ndarray) -> np.ndarray:
        return self.E + self.A * np.asarray(n, dtype=np.float64) ** -self.alpha


def _fit_point(n: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(E, A, alpha) minimising squared error; N is scaled by its geometric mean for conditioning."""
    scale = np.exp(np.mean(np.log(n)))
    alphas = ALPHAS[ALPHAS != 0]
    f = (n / scale)[None, :] ** -alphas[:, None]  # [alphas, points]
    fc, yc = f - f.mean(axis=1, keepdims=True), y - y.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        a = (fc * yc).sum(axis=1) / (fc**2).sum(axis=1)
    e = y.mean() - a * f.mean(axis=1)
    sse = ((e[:, None] + a[:, None] * f - y) ** 2).sum(axis=1)
    sse[~(a >= 0) | ~np.isfinite(sse)] = np.inf
    i = int(np.argmin(sse))
    if not sse[i] < float(np.sum(yc**2)) - 1e-15:  # no power law beats a flat line
        return float(y.mean()), 0.0, 0.0
    return float(e[i]), float(a[i] * scale ** alphas[i]), float(alphas[i])  # A x^-a = A s^a N^-a


def fit(n: np.ndarray, y: np.ndarray, n_boot: int = 500, seed: int = 0) -> Fit:
    """Fit over points (several per N allowed, e.g. one per seed); bootstrap resamples points within each N."""
    n, y = np.asarray(n, dtype=np.float64), np.asarray(y, dtype=np.float64)
    e, a, alpha = _fit_point(n, y)
    sizes = np.unique(n)
    if len(sizes) < 3:
        return Fit(e, a, alpha, (float("nan"), float("nan")), len(n))
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(n == s) for s in sizes]
    resid = y - (e + a * n**-alpha)
    alphas = []
    for _ in range(n_boot):
        if all(len(g) > 1 for g in groups):  # resample seeds within each size
            idx = np.concatenate([rng.choice(g, len(g)) for g in groups])
            alphas.append(_fit_point(n[idx], y[idx])[2])
        else:  # one point per size: residual bootstrap
            yb = (e + a * n**-alpha) + rng.choice(resid, len(resid))
            alphas.append(_fit_point(n, yb)[2])
    lo, hi = np.quantile(alphas, [0.025, 0.975])
    return Fit(e, a, alpha, (float(lo), float(hi)), len(n))
