"""The report's one uncertainty model: a hierarchical bootstrap over seeds and test dates.

Each replicate draws (1) circular blocks of consecutive test *dates* (block >= the horizon; every row of a
drawn date comes along, so a panel's symbols move together) and (2) for each model its seeds with
replacement. The date draw is shared by every model of a group (budget winners and baselines alike), so a
difference of two models is computed on the same rows in every replicate: it stays paired. Per-budget AUCs,
differences, the scaling fit's alpha, Sharpe ratios and walk-forward pooled metrics all come from here.

A replicate is a vector of row weights (how often each row was drawn), so a statistic over 1,000 replicates
is a few matrix operations instead of 1,000 calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from patchtst_hpo import metrics

LEVEL = 0.95
# (z_{1-0.05/2} + z_{0.80}): a difference this many standard errors away from 0 is found 80% of the time.
MDE_Z = 1.959964 + 0.841621
CHUNK = 200  # replicates expanded to row weights at a time (memory: CHUNK x rows floats)


@dataclass
class Estimate:
    """A point estimate, its 95% percentile interval and the replicates it came from (paired by index)."""

    point: float
    lo: float
    hi: float
    reps: np.ndarray = field(repr=False)
    seeds: int = 1  # seeds behind the estimate (1: seed-to-seed variation is not in the interval)

    @property
    def sd(self) -> float:
        r = self.reps[np.isfinite(self.reps)]
        return float(np.std(r, ddof=1)) if len(r) > 1 else float("nan")

    @property
    def mde(self) -> float:
        """Minimal detectable effect: the smallest true value found with 80% power at the 5% level."""
        return MDE_Z * self.sd

    def excludes(self, value: float = 0.0) -> bool:
        return bool(np.isfinite(self.lo) and (self.lo > value or self.hi < value))

    def as_dict(self) -> dict:
        return {"point": self.point, "lo": self.lo, "hi": self.hi, "mde": self.mde, "seeds": self.seeds}


def estimate(point: float, reps: np.ndarray, seeds: int = 1) -> Estimate:
    r = np.asarray(reps, dtype=np.float64)
    lo, hi = metrics.quantile_ci(list(r[np.isfinite(r)]), LEVEL)
    return Estimate(float(point), lo, hi, r, seeds)


def difference(a: Estimate, b: Estimate) -> Estimate:
    """a - b on the same replicates (paired): the shared date draws cancel what both models share."""
    return estimate(a.point - b.point, a.reps - b.reps, min(a.seeds, b.seeds))


def date_codes(dates) -> np.ndarray:
    """Row -> index of its date in time order (rows without dates: each row its own period)."""
    if dates is None:
        raise ValueError("date_codes needs dates")
    d = pd.to_datetime(pd.Series(np.asarray(dates)))
    return np.searchsorted(np.sort(d.unique()), d.to_numpy()).astype(np.int64)


class Bootstrap:
    """Shared date-block draws for one test set; `auc`, `mean` and `sharpe` give paired Estimates."""

    def __init__(self, codes: np.ndarray, block: int, n_boot: int, seed: int):
        self.codes = np.asarray(codes, dtype=np.int64)
        self.n_dates = int(self.codes.max()) + 1 if len(self.codes) else 0
        self.block, self.n_boot = max(int(block), 1), int(n_boot)
        rng = np.random.default_rng(seed)
        n, b = self.n_dates, self.block
        starts = rng.integers(0, n, (self.n_boot, -(-n // b)))
        drawn = ((starts[:, :, None] + np.arange(b)) % n).reshape(self.n_boot, -1)[:, :n]
        flat = drawn + n * np.arange(self.n_boot)[:, None]
        self.date_weights = np.bincount(flat.ravel(), minlength=self.n_boot * n).reshape(self.n_boot, n)
        self._seed_rng = np.random.default_rng([seed, 1])

    @classmethod
    def for_rows(cls, n_rows: int, block: int, n_boot: int, seed: int) -> Bootstrap:
        """Rows that are their own periods, in time order (one series)."""
        return cls(np.arange(n_rows), block, n_boot, seed)

    def _row_weights(self):
        for i in range(0, self.n_boot, CHUNK):
            yield self.date_weights[i : i + CHUNK][:, self.codes].astype(np.float64)

    def _per_seed(self, stat, p: np.ndarray) -> np.ndarray:
        """[replicates, seeds] of `stat(weights, p_seed)`."""
        ps = np.atleast_2d(np.asarray(p, dtype=np.float64))
        return np.concatenate([np.stack([stat(w, q) for q in ps], axis=1) for w in self._row_weights()])

    def _hierarchical(self, point: float, per_seed: np.ndarray) -> Estimate:
        s = per_seed.shape[1]
        if s == 1:
            return estimate(point, per_seed[:, 0], 1)
        pick = self._seed_rng.integers(0, s, per_seed.shape)
        return estimate(point, np.nanmean(np.take_along_axis(per_seed, pick, axis=1), axis=1), s)

    def auc(self, y: np.ndarray, p: np.ndarray) -> Estimate:
        """Seed-mean test AUC; `p` is [rows] or [seeds, rows]."""
        y = np.asarray(y, dtype=np.float64)
        ps = np.atleast_2d(p)
        point = float(np.mean([metrics.auc(y, q) for q in ps]))
        return self._hierarchical(point, self._per_seed(lambda w, q: weighted_auc(y, q, w), ps))

    def mean(self, values: np.ndarray) -> Estimate:
        """Seed-mean of a per-row quantity (log loss, Brier); `values` is [rows] or [seeds, rows]."""
        vs = np.atleast_2d(np.asarray(values, dtype=np.float64))
        point = float(vs.mean())
        return self._hierarchical(point, self._per_seed(lambda w, v: (w @ v) / w.sum(1), vs))

    def sharpe(self, r: np.ndarray, periods_per_year: int) -> Estimate:
        """Annualised Sharpe of per-date returns (rows must be dates: `codes` = arange)."""
        r = np.asarray(r, dtype=np.float64)
        point = _sharpe(np.ones((1, len(r))), r, periods_per_year)[0]
        return self._hierarchical(point, self._per_seed(lambda w, v: _sharpe(w, v, periods_per_year), r))


def _sharpe(w: np.ndarray, r: np.ndarray, periods_per_year: int) -> np.ndarray:
    n = w.sum(1)
    m = (w @ r) / n
    var = (w * (r[None, :] - m[:, None]) ** 2).sum(1) / (n - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(var > 0, m / np.sqrt(var) * np.sqrt(periods_per_year), np.nan)


def weighted_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """AUC of each row of weights `w` [replicates, rows] (integer weights = a resample; ties count half).

    The same number as `metrics.auc(y[i], p[i])` for the rows i the weights stand for (tested).
    """
    if not np.isfinite(p).all():
        return np.full(len(w), np.nan)
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], y[order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])  # groups of tied predictions
    ws = w[:, order]
    pos = np.add.reduceat(ws * ys, starts, axis=1)
    neg = np.add.reduceat(ws * (1 - ys), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    n_pos, n_neg = pos.sum(1), neg.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (pos * (below + 0.5 * neg)).sum(1) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), out, np.nan)
