import json
import logging

import numpy as np
import pandas as pd
import pytest

from patchtst_hpo.data import features, processed
from patchtst_hpo.data.datamodule import WindowDataModule
from patchtst_hpo.data.ingest import ingest, load_raw, raw_manifest
from patchtst_hpo.data.labels import threshold_labels
from patchtst_hpo.data.splits import train_val_test, walk_forward
from patchtst_hpo.errors import ConfigError, DataError
from tests.helpers import run_cli, snapshot, synthetic_ohlcv


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "data"
    r.mkdir()
    return r


def write_csv(tmp_path, df, name="x.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


# ---------- ingest and manifests ----------


def test_ingest_round_trip_noop_and_new_version(tmp_path, root):
    df = synthetic_ohlcv()
    e1, status = ingest(write_csv(tmp_path, df), "SYN.OHLCV.daily", root)
    assert (
        status == "registered"
        and e1["version"] == 1
        and e1["rows"] == 400
        and e1["first_date"] == "2000-01-03"
    )
    raw, entry = load_raw(root, "SYN.OHLCV.daily")
    assert list(raw.columns) == ["open", "high", "low", "close", "volume"] and entry == e1
    np.testing.assert_allclose(raw["close"].to_numpy(), df["Close"].to_numpy())
    before = snapshot(root)
    df.to_parquet(tmp_path / "same.parquet")  # same content, other format: still a no-op
    e_same, status = ingest(tmp_path / "same.parquet", "SYN.OHLCV.daily", root)
    assert status == "unchanged" and e_same == e1 and snapshot(root) == before
    df.loc[399, ["Open", "High", "Low", "Close"]] *= 1.01  # the same bar 1% higher: new content
    e2, status = ingest(write_csv(tmp_path, df), "SYN.OHLCV.daily", root)
    assert status == "registered" and e2["version"] == 2 and e2["path"] != e1["path"]
    assert [e["version"] for e in raw_manifest(root).versions("SYN.OHLCV.daily")] == [1, 2]
    assert (root / e1["path"]).read_bytes() == before[type(root)(e1["path"])]  # v1 untouched
    assert load_raw(root, "SYN.OHLCV.daily", 1)[1] == e1


def test_manifest_detects_tampering(tmp_path, root):
    e, _ = ingest(write_csv(tmp_path, synthetic_ohlcv()), "SYN", root)
    assert raw_manifest(root).verify() == []
    path = root / e["path"]
    path.write_bytes(path.read_bytes() + b"x")
    problems = raw_manifest(root).verify()
    assert len(problems) == 1 and "changed since it was registered" in problems[0]
    with pytest.raises(DataError, match="changed since it was registered"):
        load_raw(root, "SYN")
    r = run_cli(["-m", "patchtst_hpo.data", "--root", str(root), "verify"])
    assert r.returncode == 1 and "CHANGED SYN v1" in r.stdout


def test_unknown_dataset_says_how_to_ingest(root):
    with pytest.raises(DataError, match="ingest FILE --name NOPE"):
        load_raw(root, "NOPE")


def corrupt(df, what):
    df = df.copy()
    if what == "missing_column":
        return df.drop(columns=["Volume"]), "missing column.*volume.*columns present"
    if what == "bad_date":
        df["Date"] = df["Date"].astype(str)
        df.loc[5, "Date"] = "not-a-date"
        return df, "unparseable date.*line 7.*not-a-date.*--date-format"
    if what == "duplicate_date":
        df.loc[7, "Date"] = df.loc[6, "Date"]
        return df, "duplicate date"
    if what == "nan_price":
        df.loc[9, "High"] = np.nan
        return df, "empty value.*'high' at line 11"
    if what == "inf_price":
        df.loc[9, "Close"] = np.inf
        return df, "'close' that are not finite numbers at line 11 \\(text \\['inf'\\]\\)"
    if what == "nonpositive":
        df.loc[11, "Low"] = 0.0
        return df, "non-positive price at line 13.*'low'"
    raise AssertionError(what)


@pytest.mark.parametrize(
    "what", ["missing_column", "bad_date", "duplicate_date", "nan_price", "inf_price", "nonpositive"]
)
def test_bad_input_clear_error_nothing_written(tmp_path, root, what):
    ingest(write_csv(tmp_path, synthetic_ohlcv(seed=1), "ok.csv"), "SYN", root)
    before = snapshot(root)
    bad, pattern = corrupt(synthetic_ohlcv(), what)
    path = write_csv(tmp_path, bad)
    with pytest.raises(DataError, match=pattern) as e:
        ingest(path, "SYN", root)
    assert str(path) in str(e.value)
    assert snapshot(root) == before


def test_missing_and_corrupt_files(tmp_path, root):
    with pytest.raises(DataError, match="no such file"):
        ingest(tmp_path / "nope.csv", "SYN", root)
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match="bad.parquet: cannot be read as parquet"):
        ingest(tmp_path / "bad.parquet", "SYN", root)
    assert not any(root.iterdir())
    r = run_cli(
        ["-m", "patchtst_hpo.data", "--root", str(root), "ingest", str(tmp_path / "nope.csv"), "--name", "X"]
    )
    assert (
        r.returncode == 2
        and r.stderr.strip().startswith("error:")
        and len(r.stderr.strip().splitlines()) == 1
    )


def test_unsorted_dates_are_sorted_with_warning(tmp_path, root, caplog):
    df = synthetic_ohlcv().sample(frac=1.0, random_state=0)
    with caplog.at_level(logging.WARNING):
        e, _ = ingest(write_csv(tmp_path, df), "SYN", root)
    assert "not in increasing order" in caplog.text
    raw, _ = load_raw(root, "SYN")
    assert raw.index.is_monotonic_increasing and len(raw) == 400


def test_value_series_ingest_and_cli_list(tmp_path, root):
    vix = pd.DataFrame({"date": pd.bdate_range("2000-01-03", periods=50), "VIX": np.linspace(12, 30, 50)})
    e, _ = ingest(write_csv(tmp_path, vix), "VIXSYN", root, value_columns=["vix"])
    assert e["columns"] == ["vix"]
    r = run_cli(["-m", "patchtst_hpo.data", "--root", str(root), "list"])
    assert r.returncode == 0 and "VIXSYN" in r.stdout


# ---------- features, labels, no look-ahead ----------


def test_tiers_are_a_registry():
    assert len(features.feature_names("a20")) == 20
    assert len(features.feature_names("a25")) == 25
    assert len(features.feature_names("a25", with_vix=True)) == 29
    with pytest.raises(ConfigError, match="known tiers: a20, a25"):
        features.feature_names("b99")


def test_no_look_ahead_in_features_property():
    raw = synthetic_ohlcv(600).rename(columns=str.lower).set_index("date")
    raw["vix"] = np.exp(np.random.default_rng(3).normal(2.8, 0.2, len(raw)))
    base = features.compute(raw, "a25", with_vix=True)
    rng = np.random.default_rng(0)
    for t in rng.integers(60, 590, size=25):
        changed = raw.copy()
        k = slice(t + 1, None)
        changed.iloc[k] = changed.iloc[k] * rng.uniform(0.5, 2.0, size=changed.iloc[k].shape)
        after = features.compute(changed, "a25", with_vix=True)
        pd.testing.assert_frame_equal(base.iloc[: t + 1], after.iloc[: t + 1])
        assert not base.iloc[t + 1 :].equals(after.iloc[t + 1 :])


def test_labels_depend_only_on_t_to_t_plus_h():
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    high = close * 1.005
    for h in (1, 3, 5):
        y = threshold_labels(high, close, h, 0.01)
        assert np.isnan(y[-h:]).all() and not np.isnan(y[:-h]).any()
        for t in rng.integers(0, 300 - h, size=20):
            expect = float(high[t + 1 : t + h + 1].max() >= close[t] * 1.01)
            assert y[t] == expect
            h2, c2 = high.copy(), close.copy()
            h2[t + h + 1 :] *= 3
            c2[t + h + 1 :] *= 3
            h2[:t] *= 0.5
            c2[:t] *= 0.5
            assert threshold_labels(h2, c2, h, 0.01)[t] == y[t]
    yc = threshold_labels(high, close, 2, 0.0, kind="close")
    assert yc[0] == float(close[1:3].max() >= close[0])


def test_normalisation_uses_train_rows_only(cfg_factory, data_dir):
    cfg = cfg_factory(f"paths.data_dir={data_dir}", "budget=tiny")
    base = WindowDataModule(cfg.data, cfg.task, 0)
    base.setup()
    df, entry = processed.load(data_dir, cfg.data.ohlcv, cfg.data.tier)
    train_stop = base.info["splits"]["train"]["rows"][1]
    # change every raw row after the train segment: the train+val normalised inputs before it stay the same
    raw, _ = load_raw(data_dir, cfg.data.ohlcv)
    cut = raw.index.get_loc(df["date"].iloc[train_stop - 1])
    changed = raw.copy()
    changed.iloc[cut + 1 :] *= 1.7
    changed_root = data_dir.parent / "changed"
    changed_root.mkdir(exist_ok=True)
    changed.reset_index().to_csv(changed_root / "c.csv", index=False)
    ingest(changed_root / "c.csv", cfg.data.ohlcv, changed_root / "d")
    cfg2 = cfg_factory(f"paths.data_dir={changed_root / 'd'}", "budget=tiny")
    other = WindowDataModule(cfg2.data, cfg2.task, 0)
    other.setup()
    a, b = base.datasets["train"].x, other.datasets["train"].x
    assert np.allclose(a[:train_stop].numpy(), b[:train_stop].numpy(), atol=1e-6)
    assert not np.allclose(a[train_stop + 5 :].numpy(), b[train_stop + 5 :].numpy())


# ---------- splits ----------


def test_split_purge_on_real_sample(cfg_factory, data_dir):
    for task in ("h1_1pct", "h5_1pct"):
        cfg = cfg_factory(f"paths.data_dir={data_dir}", f"task={task}")
        dm = WindowDataModule(cfg.data, cfg.task, 0)
        dm.setup()
        c, h = cfg.data.context_length, cfg.task.horizon
        spans = {}
        for name, ds in dm.datasets.items():
            a = ds.anchors.numpy()
            spans[name] = (a.min() - c + 1, a.max() + h)  # rows touched by windows and labels
        assert spans["train"][1] < spans["val"][0] and spans["val"][1] < spans["test"][0]
        gap = dm.datasets["val"].anchors.min().item() - dm.datasets["train"].anchors.max().item()
        assert gap >= c + h - 1


def test_split_config_errors():
    dates = pd.bdate_range("2000-01-03", periods=500)
    bad = [
        ({"method": "fractions", "train": 0.8, "val": 0.3}, ConfigError, "sum < 1"),
        ({"method": "fractions", "train": 0.0, "val": 0.3}, ConfigError, "must be > 0"),
        ({"method": "dates", "val_start": "2001-01-01", "test_start": "2000-06-01"}, ConfigError, "before"),
        ({"method": "dates", "val_start": "2001-01-01", "test_start": "2001-01-10"}, DataError, "'val' has"),
        ({"method": "fractions", "train": 0.9, "val": 0.05}, DataError, "rows are needed"),
        ({"method": "weekly"}, ConfigError, "use 'fractions' or 'dates'"),
    ]
    from omegaconf import OmegaConf

    for split, exc, pattern in bad:
        with pytest.raises(exc, match=pattern):
            train_val_test(dates, OmegaConf.create({"purge": None, **split}), 60, 5)


def test_walk_forward_folds():
    folds = walk_forward(1000, folds=3, val_rows=100, test_rows=100, min_train_rows=200, purge=64)
    assert len(folds) == 3
    for k, (tr, va, te) in enumerate(folds):
        assert tr.stop + 64 == va.start and va.stop + 64 == te.start and te.stop - te.start == 100
        if k:
            assert te.start == folds[k - 1][2].stop
    assert folds[-1][2].stop == 1000
    with pytest.raises(DataError):
        walk_forward(300, folds=3, val_rows=100, test_rows=100, min_train_rows=200)


@pytest.mark.parametrize("n_rows", [300, 304, 305, 306, 400])
def test_walk_forward_every_fold_has_min_train_rows(n_rows):
    """Fold 0 loses a purge before val and one before test: it still has >= min_train_rows (was 70 of 75)."""
    kw = {"folds": 2, "val_rows": 50, "test_rows": 50, "min_train_rows": 75, "purge": 15}
    if n_rows - 100 - 50 - 30 < 75:
        with pytest.raises(DataError):
            walk_forward(n_rows, **kw)
        return
    for tr, _, _ in walk_forward(n_rows, **kw):
        assert tr.stop - tr.start >= 75


def test_sample_build_records_provenance(data_dir, tmp_path):
    e, status = processed.build(data_dir, "SPX.OHLCV.daily", "a25", "VIX.close.daily")
    assert status == "built"
    assert e["rows"] > 1000 and len(e["features"]) == 29 and e["first_date"] >= "2014-01-01"
    assert {i["name"] for i in e["inputs"]} == {"SPX.OHLCV.daily", "VIX.close.daily"}
    again, status = processed.build(data_dir, "SPX.OHLCV.daily", "a25", "VIX.close.daily")
    assert status == "up to date" and again == e
    doc = json.loads((data_dir / "processed" / "manifest.json").read_text())
    assert e["id"] in doc["datasets"]
