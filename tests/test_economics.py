"""Economic value on synthetic series with known answers (analysis/economics.py)."""

import numpy as np
import pandas as pd
import pytest

from patchtst_hpo.analysis import economics


def _series(n=500, seed=0):
    rng = np.random.default_rng(seed)
    ret = rng.normal(0.0003, 0.01, n)
    return ret, pd.DataFrame({"date": pd.bdate_range("2020-01-01", periods=n), "symbol": "X", "ret": ret})


def test_perfect_signal_wins_every_invested_day_and_beats_buy_and_hold():
    ret, frame = _series()
    df = economics.timing_frame(frame, (ret > 0).astype(float), 0.5, cost_bp=0.0)
    s = economics.summarize(df["net"], df["gross"], df["pos"], df["turnover"], 252, 200, 5, 0)
    bh = economics.timing_frame(frame, np.ones(len(ret)), 0.5, 0.0)
    b = economics.summarize(bh["net"], bh["gross"], bh["pos"], bh["turnover"], 252, 200, 5, 0)
    assert s["hit_rate"] == 1.0 and s["max_drawdown"] == 0.0
    assert s["exposure"] == pytest.approx(np.mean(ret > 0))
    assert s["sharpe"] > 10 > b["sharpe"] and s["sharpe_ci_lo"] > b["sharpe_ci_hi"]


def test_constant_signal_is_buy_and_hold():
    ret, frame = _series()
    df = economics.timing_frame(frame, np.full(len(ret), 0.9), 0.5, cost_bp=10.0)
    # one trade on day one, then held: returns equal the asset's except the entry cost
    np.testing.assert_allclose(df["gross"].to_numpy(), ret)
    assert df["turnover"].sum() == 1.0
    assert df["net"].iloc[0] == pytest.approx(ret[0] - 10 / 1e4)
    s = economics.summarize(df["gross"], df["gross"], df["pos"], df["turnover"], 252, 100, 5, 0)
    assert s["sharpe"] == pytest.approx(np.mean(ret) / np.std(ret, ddof=1) * np.sqrt(252))
    assert s["ann_return"] == pytest.approx(np.prod(1 + ret) ** (252 / len(ret)) - 1)


def test_costs_reduce_returns_by_turnover_times_cost():
    ret, frame = _series()
    pos = (np.arange(len(ret)) // 3 % 2).astype(float)  # in 3 days, out 3 days
    free = economics.timing_frame(frame, pos, 0.5, 0.0)
    costly = economics.timing_frame(frame, pos, 0.5, 7.5)
    np.testing.assert_allclose(free["gross"].to_numpy(), pos * ret)
    np.testing.assert_allclose(free["net"].to_numpy(), free["gross"].to_numpy())
    assert np.mean(costly["gross"]) - np.mean(costly["net"]) == pytest.approx(
        np.mean(costly["turnover"]) * 7.5e-4
    )
    assert np.mean(costly["turnover"]) == pytest.approx(np.abs(np.diff(pos, prepend=0)).mean())


def test_max_drawdown_known_path():
    assert economics.max_drawdown(np.array([0.1, -0.5, 0.2])) == pytest.approx(0.5)
    assert economics.max_drawdown(np.array([-0.2, 0.1])) == pytest.approx(0.2)


def test_decile_long_short_with_informative_and_random_signals():
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2021-01-01", periods=200)
    frame = pd.DataFrame([(d, f"S{i}") for d in dates for i in range(50)], columns=["date", "symbol"])
    frame["ret"] = rng.normal(0, 0.02, len(frame))
    good = economics.decile_long_short(frame, frame["ret"].to_numpy(), 0.1, 10, 0.0)
    # perfect foresight: top 5 minus bottom 5 of 50 each day, every day positive
    assert len(good) == 200 and (good["gross"] > 0).all()
    assert good["turnover"].iloc[0] == pytest.approx(2.0)  # 1 long + 1 short gross exposure opened
    noise = economics.decile_long_short(frame, rng.random(len(frame)), 0.1, 10, 0.0)
    assert abs(noise["gross"].mean()) < good["gross"].mean() / 5
    few = economics.decile_long_short(frame[frame["symbol"].isin(["S1", "S2"])], np.ones(400), 0.1, 10, 0.0)
    assert few.empty  # fewer symbols than min_symbols: no portfolio
