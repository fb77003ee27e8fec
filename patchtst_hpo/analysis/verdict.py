"""The report's verdicts: one object per (task, data) group that every sentence, plot title and JSON field reads.

Scaling has a model-free reading first (the paired difference of the largest and the smallest budget, every
budget pair for reversals, and a rank trend over budgets, all on the same bootstrap replicates) and a
power-law fit only where there are more distinct sizes than its free parameters. "Cannot tell" is a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from patchtst_hpo.analysis import scaling
from patchtst_hpo.analysis.uncertainty import Estimate, difference, estimate

DETECTED, INVERSE, NON_MONOTONE, NONE, NOT_ASSESSED = (
    "detected",
    "inverse",
    "non_monotone",
    "none",
    "not_assessed",
)


@dataclass
class BudgetPoint:
    """A budget's confirmed winner: its size (params, or training compute) and its seed-mean test AUC."""

    budget: str
    size: float
    auc: Estimate


@dataclass
class Scaling:
    status: str
    sentence: str
    largest_vs_smallest: Estimate | None = None
    rank: Estimate | None = None
    fit: scaling.Fit | None = None
    fit_sentence: str = ""
    draw_curve: bool = False

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "sentence": self.sentence,
            "largest_vs_smallest": self.largest_vs_smallest.as_dict() if self.largest_vs_smallest else None,
            "rank_trend": self.rank.as_dict() if self.rank else None,
            "fit": self.fit.as_dict() if self.fit else None,
            "fit_sentence": self.fit_sentence,
            "draw_curve": self.draw_curve,
        }


def _ci(e: Estimate, spec: str = "+.3f") -> str:
    return f"{e.point:{spec}} [{e.lo:{spec}}, {e.hi:{spec}}]"


def spearman_rows(values: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row of `values` [replicates, budgets] against the budgets' size order."""
    v = np.atleast_2d(values)
    k = v.shape[1]
    ranks = np.argsort(np.argsort(v, axis=1), axis=1).astype(np.float64)
    x = np.arange(k, dtype=np.float64)
    rc, xc = ranks - ranks.mean(axis=1, keepdims=True), x - x.mean()
    return (rc @ xc) / np.sqrt((rc**2).sum(axis=1) * (xc**2).sum())


def fit_sentence(f: scaling.Fit | None, n_sizes: int, axis: str = "N") -> tuple[str, bool]:
    """What the power-law fit says in words, and whether its curve may be drawn."""
    need = scaling.FREE_PARAMETERS + 1
    if f is None:
        return (
            f"not enough budgets for a fit of L({axis}) = E + A {axis}^-alpha ({n_sizes} distinct sizes; its "
            f"{scaling.FREE_PARAMETERS} free parameters need at least {need})",
            False,
        )
    lo, hi = f.alpha_ci
    if f.flat:
        return "the power-law fit is flat (A = 0): no exponent to report", False
    if f.at_bound:
        return (
            f"the power-law fit puts alpha at the edge of its grid ({f.alpha:.3f}): the data do not pin the "
            f"exponent, so no curve is drawn",
            False,
        )
    text = f"L({axis}) = E + A {axis}^-alpha: alpha {f.alpha:.3f} [{lo:.3f}, {hi:.3f}], E {f.E:.3f}"
    edges = [bool(np.isclose(v, e)) for v, e in ((lo, scaling.ALPHAS[0]), (hi, scaling.ALPHAS[-1]))]
    if all(edges):
        text += " (the interval spans the whole grid: the data do not bound alpha)"
    elif any(edges):
        text += " (an end of the interval is the grid's edge: alpha is bounded on one side only)"
    if lo <= 0 <= hi:
        text += "; its interval includes 0"
    return text, True


def _reversals(pts: list[BudgetPoint]) -> list[str]:
    """Pairs where the larger budget scores below a smaller one beyond noise (paired CI below 0)."""
    out = []
    for i, small in enumerate(pts):
        for big in pts[i + 1 :]:
            d = difference(big.auc, small.auc)
            if np.isfinite(d.hi) and d.hi < 0:
                out.append(f"{big.budget} below {small.budget} ({_ci(d)})")
    return out


def scaling_verdict(points: list[BudgetPoint], test_rows: int, axis: str = "N") -> Scaling:
    """The scaling verdict over budget winners (one point per budget, never within a budget)."""
    pts = sorted(points, key=lambda p: p.size)
    sizes = len({p.size for p in pts})
    if sizes < 2:
        return Scaling(
            NOT_ASSESSED, "scaling not assessed: one budget", fit_sentence=fit_sentence(None, sizes)[0]
        )
    small, big = pts[0], pts[-1]
    d = difference(big.auc, small.auc)
    reps = np.stack([p.auc.reps for p in pts], axis=1)
    ok = np.isfinite(reps).all(axis=1)
    pt = np.array([p.auc.point for p in pts])
    rank = estimate(float(spearman_rows(pt[None, :])[0]), spearman_rows(reps[ok])) if len(pts) > 2 else None
    f = None
    if sizes >= scaling.FREE_PARAMETERS + 1:
        f = scaling.fit(np.array([p.size for p in pts]), 1 - pt, 1 - reps)
    fit_text, can_draw = fit_sentence(f, sizes, axis)
    reversals = _reversals(pts)
    pair = f"{big.budget} - {small.budget} test AUC {_ci(d)} (paired)"
    trend = (
        f"rank trend over {len(pts)} budgets (Spearman) {_ci(rank, '+.2f')}"
        if rank is not None
        else "no rank trend (it needs 3 or more budgets)"
    )
    if reversals:
        status = NON_MONOTONE
        head = f"not monotone: {'; '.join(reversals)}; {pair}"
    elif d.excludes(0) and d.lo > 0:
        status, head = DETECTED, f"scaling detected: {pair}"
    elif d.excludes(0):
        status, head = INVERSE, f"inverse scaling: the largest budget scores below the smallest: {pair}"
    else:
        status = NONE
        direction = "higher" if d.point > 0 else "lower" if d.point < 0 else "equal"
        head = (
            f"no scaling (cannot tell): {pair} contains 0, point estimate {direction} for the larger model; "
            f"this test set ({test_rows} rows) resolves differences of about {d.mde:.3f} or more"
        )
    top = int(np.argmax(pt))
    if status != NON_MONOTONE and 0 < top < len(pts) - 1 and pt[top] - max(pt[0], pt[-1]) >= 5e-4:
        head += f"; point estimates peak at {pts[top].budget} (within noise)"
    seeds = min(p.auc.seeds for p in pts)
    note = "; one seed per budget: seed-to-seed variation is not in these intervals" if seeds == 1 else ""
    draw = can_draw and status == DETECTED
    return Scaling(status, f"{head}; {trend}; {fit_text}{note}", d, rank, f, fit_text, draw)


@dataclass
class Comparison:
    a: str
    b: str
    diff: Estimate
    verdict: str  # beats | ties | loses to
    sentence: str

    def as_dict(self) -> dict:
        d = self.diff
        return {"a": self.a, "b": self.b, "diff": d.point, "lo": d.lo, "hi": d.hi, "mde": d.mde} | {
            "verdict": self.verdict,
            "sentence": self.sentence,
        }


def compare(a: str, b: str, d: Estimate) -> Comparison:
    """a vs b from their paired AUC difference; "ties" says the point's direction and what the test resolves."""
    if d.excludes(0):
        v = "beats" if d.lo > 0 else "loses to"
        return Comparison(a, b, d, v, f"{a} **{v}** {b}: paired AUC difference {_ci(d)}")
    direction = "above" if d.point > 0 else "below" if d.point < 0 else "equal to"
    s = (
        f"{a} **ties** {b}: paired AUC difference {_ci(d)} contains 0 (point estimate {direction} it); "
        f"differences below about {d.mde:.3f} are not resolvable on this test set"
    )
    return Comparison(a, b, d, "ties", s)


@dataclass
class Verdict:
    """Everything a group's report concludes; summary.md, figure titles and report.json read only this."""

    headline: str
    scaling: Scaling
    compute: Scaling | None = None
    baseline: Comparison | None = None
    comparisons: list[Comparison] = field(default_factory=list)
    studies: list[dict] = field(
        default_factory=list
    )  # per study: trial kinds and demo/search (study_size.py)
    absent: dict[str, str] = field(default_factory=dict)  # section -> why it is not there, one sentence

    def as_dict(self) -> dict:
        return {
            "headline": self.headline,
            "scaling": self.scaling.as_dict(),
            "compute": self.compute.as_dict() if self.compute else None,
            "baseline": self.baseline.as_dict() if self.baseline else None,
            "comparisons": [c.as_dict() for c in self.comparisons],
            "studies": self.studies,
            "absent": self.absent,
        }
