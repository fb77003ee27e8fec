"""One group's Verdict from its confirmed winners and baselines: paired comparisons, scaling over budgets
(against parameters and against training compute), the headline sentence, study sizes and absent sections."""

from __future__ import annotations

import numpy as np

from patchtst_hpo.analysis import study_size
from patchtst_hpo.analysis.uncertainty import difference
from patchtst_hpo.analysis.verdict import (
    NOT_ASSESSED,
    BudgetPoint,
    Comparison,
    Scaling,
    Verdict,
    compare,
    scaling_verdict,
)


def best_baseline(base) -> str:
    """The baseline with the highest test AUC (the hardest bar to clear); majority never counts."""
    return max(
        (k for k in base.metrics if k != "majority"), key=lambda k: np.nan_to_num(base.metrics[k]["auc"])
    )


def comparisons(winners: list, base) -> list[Comparison]:
    """Each winner vs the best baseline, and each budget vs the next smaller one (paired replicates)."""
    b = best_baseline(base)
    out = [compare(f"PatchTST {w.budget}", f"baseline {b}", difference(w.auc, base.auc[b])) for w in winners]
    ws = sorted(winners, key=lambda w: w.params)
    for small, big in zip(ws, ws[1:], strict=False):
        out.append(
            compare(f"PatchTST {big.budget}", f"PatchTST {small.budget}", difference(big.auc, small.auc))
        )
    return out


def _compute_scaling(winners: list, top) -> Scaling | None:
    """Scaling against training compute over the budgets' winners (never the trials within a budget)."""
    rank1 = top[top["rank"] == 1].set_index("budget")
    if "compute" not in rank1 or len(winners) < 2:
        return None
    c = {w.budget: float(rank1.loc[w.budget, "compute"]) for w in winners}
    if not all(np.isfinite(v) and v > 0 for v in c.values()):
        return None
    pts = [BudgetPoint(w.budget, c[w.budget], w.auc) for w in winners]
    return scaling_verdict(pts, int(top["test_samples"].iloc[0]), axis="C")


def best_on_val(winners: list, direction: str):
    return max(winners, key=lambda w: w.val_objective if direction != "minimize" else -w.val_objective)


def build(r, winners: list) -> Verdict:
    """The group's Verdict (also when nothing was confirmed: then it says why)."""
    g = r.group
    studies = [study_size.summary(g.trials, s) for s in g.studies]
    if not winners:
        s = Scaling(NOT_ASSESSED, "scaling not assessed: no confirmed transformer")
        why = "no complete trial in this group" if r.top.empty else "confirmation is off (confirm=false)"
        return Verdict(f"No confirmed transformer ({why}): nothing to compare.", s, studies=studies)
    n_test = int(r.top["test_samples"].iloc[0])
    pts = [BudgetPoint(w.budget, float(w.params), w.auc) for w in winners]
    sc = scaling_verdict(pts, n_test)
    comps = comparisons(winners, r.baseline)
    best = best_on_val(winners, str(g.first.get("direction", "maximize")))
    vs = next(c for c in comps if c.a == f"PatchTST {best.budget}" and c.b.startswith("baseline"))
    head = (
        f"The best transformer on validation, PatchTST {best.budget} (test AUC {best.auc.point:.3f} "
        f"[{best.auc.lo:.3f}, {best.auc.hi:.3f}]), {vs.sentence[len(vs.a) + 1 :]}. Scaling over budgets: "
        f"{sc.sentence}."
    )
    demos = [s["study"] for s in studies if s["kind"] == "demo"]
    if demos:
        head += f" Studies {', '.join(demos)} are demos, not searches (no model-guided trial)."
    return Verdict(head, sc, _compute_scaling(winners, r.top), vs, comps, studies, dict(r.absent))
