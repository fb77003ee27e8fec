"""Verdicts on synthetic seed x row predictions with known answers (analysis/uncertainty.py, verdict.py).

Each pattern a study can show gives its verdict sentence; the issue's own numbers (seed AUCs .600/.601,
.606/.607, .609/.610 on ~700 test rows: +0.009 AUC, far inside the test set's noise) must not read as scaling.
"""

import numpy as np
import pytest
from scipy.stats import norm

from patchtst_hpo import metrics
from patchtst_hpo.analysis import scaling, uncertainty
from patchtst_hpo.analysis.verdict import BudgetPoint, compare, scaling_verdict
from tests import verdict_data as vd


def _verdict(aucs, rows=700, sizes=vd.SIZES):
    y, ps = vd.study(aucs, rows)
    for a, p in zip(aucs, ps, strict=True):  # the data are what the test says they are
        assert [metrics.auc(y, q) for q in p] == pytest.approx(a, abs=2e-4)
    return scaling_verdict(vd.points(y, ps, sizes=sizes), rows)


def test_weighted_auc_is_the_resampled_auc_with_ties():
    y, ps = vd.study([[0.65]], 300)
    p = np.round(ps[0][0], 1)  # many ties
    bs = uncertainty.Bootstrap.for_rows(300, 5, 4, 0)
    got = uncertainty.weighted_auc(y, p, bs.date_weights.astype(float))
    for k in range(4):
        i = np.repeat(np.arange(300), bs.date_weights[k])
        assert got[k] == pytest.approx(metrics.auc(y[i], p[i]), abs=1e-12)


def test_date_blocks_move_a_panels_symbols_together():
    dates = np.repeat(np.arange("2020-01-01", "2020-03-01", dtype="datetime64[D]"), 3)  # 3 symbols a date
    codes = uncertainty.date_codes(dates)
    w = uncertainty.Bootstrap(codes, 5, 50, 0).date_weights[:, codes]
    assert (w[:, 0::3] == w[:, 1::3]).all() and (w[:, 0::3] == w[:, 2::3]).all()
    assert (w.sum(axis=1) == len(dates)).all()


def test_issue_numbers_are_not_scaling():
    v = _verdict([[0.600, 0.601], [0.606, 0.607], [0.609, 0.610]])
    assert v.status == "none" and v.sentence.startswith("no scaling (cannot tell)")
    assert "scaling detected" not in v.sentence and not v.draw_curve and v.fit is None
    assert "not enough budgets for a fit" in v.sentence and "point estimate higher" in v.sentence
    d = v.largest_vs_smallest
    assert d.lo < 0 < d.hi and d.hi - d.lo > 0.04 and d.mde > 0.03  # the test set's noise, not the seeds'


def test_noisy_seeds_widen_the_interval():
    quiet = _verdict([[0.600, 0.601], [0.606, 0.607], [0.609, 0.610]]).largest_vs_smallest
    noisy = _verdict([[0.600, 0.640], [0.606, 0.566], [0.609, 0.650]])
    assert noisy.status == "none" and "scaling detected" not in noisy.sentence
    d = noisy.largest_vs_smallest
    assert d.hi - d.lo > quiet.hi - quiet.lo  # seeds that disagree widen it (was +-0.002)


def test_flat_is_no_scaling():
    v = _verdict([[0.60, 0.60], [0.60, 0.60], [0.60, 0.60], [0.60, 0.60]])
    assert v.status == "none" and v.sentence.startswith("no scaling (cannot tell)") and not v.draw_curve


def test_monotone_is_scaling():
    v = _verdict([[0.60, 0.605], [0.66, 0.665], [0.72, 0.725]], rows=1500)
    assert v.status == "detected" and v.sentence.startswith("scaling detected: 20M - tiny test AUC +0.120")
    assert v.largest_vs_smallest.lo > 0 and v.rank.lo > 0
    assert "not enough budgets for a fit" in v.sentence and not v.draw_curve  # 3 sizes, 3 parameters


def test_peak_in_the_middle_is_not_monotone():
    v = _verdict([[0.60, 0.605], [0.72, 0.725], [0.62, 0.625]], rows=1500)
    assert v.status == "non_monotone" and v.sentence.startswith("not monotone: 20M below 2M")
    assert not v.draw_curve
    issue = _verdict([[0.600], [0.650], [0.620]])  # the issue's numbers: within noise, no alpha 2.000
    assert issue.status == "none" and "peak at 2M (within noise)" in issue.sentence and not issue.draw_curve


def test_one_seed_per_budget_says_seed_variation_is_missing():
    v = _verdict([[0.60], [0.61], [0.62]])
    assert v.status == "none" and "one seed per budget" in v.sentence
    assert v.largest_vs_smallest.hi - v.largest_vs_smallest.lo > 0.04  # was an exact fit of zero width


def test_exact_power_law_over_four_budgets_recovers_alpha():
    true = [1 - (0.25 + 2.0 * n**-0.2) for n in vd.SIZES[:4]]
    v = _verdict([[a, a] for a in true], rows=3000)
    assert v.status == "detected" and v.draw_curve and "L(N) = E + A N^-alpha: alpha" in v.sentence
    lo, hi = v.fit.alpha_ci
    assert lo < 0.2 < hi and v.fit.alpha == pytest.approx(0.2, abs=0.05) and v.fit.E >= 0
    three = _verdict([[a, a] for a in true[:3]], rows=3000)
    assert (
        three.status == "detected" and three.fit is None and "not enough budgets for a fit" in three.sentence
    )


def test_pure_noise_is_no_scaling_and_auc_contains_half():
    rng = np.random.default_rng(7)
    y = (rng.random(700) < 0.3).astype(float)
    ps = [rng.normal(0, 1, (2, 700)) for _ in range(4)]
    pts = vd.points(y, ps)
    v = scaling_verdict(pts, 700)
    assert v.status == "none" and "scaling detected" not in v.sentence and not v.draw_curve
    assert all(p.auc.lo < 0.5 < p.auc.hi for p in pts)


def test_ties_say_direction_and_mde():
    y, (a, b) = vd.study([[0.62], [0.66]], 700)
    bs = uncertainty.Bootstrap.for_rows(700, 1, 300, 0)
    c = compare("PatchTST 2M", "baseline gbdt", uncertainty.difference(bs.auc(y, a), bs.auc(y, b)))
    assert c.verdict == "ties" and "point estimate below it" in c.sentence and "not resolvable" in c.sentence
    assert c.diff.point == pytest.approx(-0.04, abs=1e-3) and c.diff.mde > 0.04


def test_floor_is_never_negative():
    n = np.array([1e5, 1e6, 1e7, 1e8])
    y = np.array([0.50, 0.30, 0.18, 0.10])  # an unconstrained fit wants E < 0
    e, a, alpha = scaling.fit_point(n, y)
    assert e >= 0 and a > 0 and alpha > 0


def _simulate(rng, boot_seed, sizes, true_auc, tau=0.05, seeds=3, rows=1000, n_boot=300):
    """One simulated study: per budget `seeds` models whose true AUC varies by seed around `true_auc`."""
    d = np.sqrt(2 + tau**2) * norm.ppf(true_auc)  # E over seeds of Phi(d_s / sqrt 2) = true AUC
    y = (rng.random(rows) < 0.3).astype(float)
    common = rng.normal(0, 1, rows)
    bs = uncertainty.Bootstrap.for_rows(rows, 1, n_boot, boot_seed)
    pts = []
    for k, n in enumerate(sizes):
        own = rng.normal(0, 1, rows)
        ps = [
            (d[k] + tau * rng.normal()) * y + np.sqrt(0.5) * common + 0.5 * (own + rng.normal(0, 1, rows))
            for _ in range(seeds)
        ]
        pts.append(BudgetPoint(str(k), n, bs.auc(y, np.stack(ps))))
    return scaling_verdict(pts, rows)


@pytest.mark.slow
def test_intervals_cover_the_truth():
    """200 simulated studies (4 budgets, 3 seeds, 1,000 test rows, true alpha 0.2): the 95% intervals of
    the largest-vs-smallest AUC difference and of alpha cover the truth in >= 90% of them."""
    sizes = np.array([1e5, 2e6, 2e7, 2e8])
    true = 1 - (0.25 + 2.0 * sizes**-0.2)
    hit_d = hit_a = 0
    for rep in range(200):
        v = _simulate(np.random.default_rng(1000 + rep), rep, sizes, true)
        d = v.largest_vs_smallest
        hit_d += d.lo <= true[-1] - true[0] <= d.hi
        hit_a += v.fit.alpha_ci[0] <= 0.2 <= v.fit.alpha_ci[1]
    print(f"coverage over 200 studies: AUC difference {hit_d / 200:.1%}, alpha {hit_a / 200:.1%}")
    assert hit_d >= 180 and hit_a >= 180


def _study(n_extremes: int, n_more: int, sampler: dict | None):
    """A finished study as the sweeper leaves it: extremes enqueued first, then sampled trials, in turn."""
    import optuna

    study = optuna.create_study(direction="maximize")
    if sampler is not None:
        study.set_user_attr("sampler", sampler)
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for i in range(n_extremes + n_more):
        if i < n_extremes:
            study.enqueue_trial({"x": i / 10}, user_attrs={"enqueued": "extreme"})
        t = study.ask(dist)
        study.tell(t, 0.5)
    return study


@pytest.mark.parametrize(
    "n_more, sampler, kinds, kind",
    [
        (3, {"name": "TPESampler", "n_startup_trials": 8}, {"extreme": 3, "startup": 3}, "demo"),
        (
            9,
            {"name": "TPESampler", "n_startup_trials": 8},
            {"extreme": 3, "startup": 5, "guided": 4},
            "search",
        ),
        (2, {"name": "RandomSampler"}, {"extreme": 3, "random": 2}, "search"),
        (2, None, {"extreme": 3, "unknown": 2}, "unknown"),
        (0, {"name": "TPESampler", "n_startup_trials": 8}, {"extreme": 3}, "demo"),
    ],
)
def test_study_size_counts_extremes_startup_and_guided(n_more, sampler, kinds, kind):
    """Optuna's start-up count is over finished trials, extremes included: with 3 extremes and
    n_startup_trials=8, trials 3-7 are random and the 9th finished trial on is model-guided."""
    import pandas as pd

    from patchtst_hpo.analysis import study_size

    study = _study(3, n_more, sampler)
    k = study_size.trial_kinds(study)
    got = pd.Series(list(k.values())).value_counts().to_dict()
    assert got == kinds
    trials = pd.DataFrame({"study": "s", "state": "COMPLETE", "trial_kind": list(k.values())})
    s = study_size.summary(trials, "s")
    assert s["kind"] == kind and s["sentence"].startswith(f"s: {3 + n_more} finished trials")
    assert (kind == "demo") == ("demo, no trial was guided" in s["sentence"])


@pytest.mark.parametrize(
    "fit, said, drawable",
    [
        (None, "not enough budgets for a fit", False),
        (scaling.Fit(0.4, 0.0, 0.0, (0.0, 0.0), 4), "the power-law fit is flat", False),
        (scaling.Fit(0.3, 1.0, 2.0, (1.5, 2.0), 4, True, True), "puts alpha at the edge of its grid", False),
        (scaling.Fit(0.3, 1.0, 0.7, (-1.0, 2.0), 4, False, True), "spans the whole grid", True),
        (scaling.Fit(0.3, 1.0, 0.7, (0.2, 2.0), 4, False, True), "bounded on one side only", True),
        (scaling.Fit(0.3, 1.0, 0.7, (0.5, 0.9), 4), "alpha 0.700 [0.500, 0.900], E 0.300", True),
    ],
)
def test_fit_sentences(fit, said, drawable):
    from patchtst_hpo.analysis.verdict import fit_sentence

    text, can_draw = fit_sentence(fit, 3 if fit is None else 4)
    assert said in text and can_draw == drawable
