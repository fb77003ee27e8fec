"""Panels: ingest (folder, glob, long file), per-symbol features, splits and purge, normalisation,
windows that never cross symbols, train_fraction and shuffled training labels, and a real training run."""

import json

import numpy as np
import pandas as pd
import pytest

from patchtst_hpo.data import features, panel, synthetic
from patchtst_hpo.data.datamodule import WindowDataModule
from patchtst_hpo.data.ingest import raw_manifest
from patchtst_hpo.data.processed import make_features, processed_manifest
from patchtst_hpo.errors import ConfigError, DataError
from tests.helpers import FAST, check, run_cli

SYMBOLS, DAYS = 4, 400


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Per-symbol parquet files on a ragged calendar: S0001 ends 30 days early, S0002 misses one day in the
    middle, S0003 starts 60 business days late."""
    out = tmp_path_factory.mktemp("synth")
    synthetic.write(out, SYMBOLS, DAYS, seed=1)
    for sym, rows in (("S0001", slice(0, DAYS - 30)), ("S0003", slice(60, None))):
        pd.read_parquet(out / f"{sym}.parquet").iloc[rows].to_parquet(out / f"{sym}.parquet", index=False)
    gap = pd.read_parquet(out / "S0002.parquet")
    gap.drop(index=120).to_parquet(out / "S0002.parquet", index=False)
    return out


@pytest.fixture(scope="module")
def root(files, tmp_path_factory):
    r = tmp_path_factory.mktemp("data")
    panel.ingest_panel(str(files), "P", r)
    return r


def dm_for(root, cfg_factory, *overrides, seed=0):
    cfg = cfg_factory(
        "data=panel",
        "data.panel=P",
        "data.tier=ohlcv5",
        "data.context_length=20",
        f"paths.data_dir={root}",
        *overrides,
    )
    dm = WindowDataModule(cfg.data, cfg.task, seed)
    dm.setup()
    return dm, cfg


def blocks_of(root):
    df, _ = panel.load(root, "P", "ohlcv5")
    codes, names = pd.factorize(df["symbol"])
    return df, codes, names


# ---------- ingest ----------


def test_ingest_folder_versions_every_symbol(root, files):
    m = raw_manifest(root)
    entry = m.get("P")
    assert entry["kind"] == "panel" and [s["symbol"] for s in entry["symbols"]] == [
        f"S{i:04d}" for i in range(SYMBOLS)
    ]
    for s in entry["symbols"]:
        member = m.get(s["name"], s["version"])
        assert member["sha256"] == s["sha256"] and m.check(member).name == "v1.parquet"
        assert m.file(member).parent.name == s["symbol"] and m.file(member).parent.parent.name == "P"
    assert m.check(entry).name == "panel_v1.json" and not m.verify()
    again, created = panel.ingest_panel(str(files / "*.parquet"), "P", root)  # same content via a glob
    assert not created and again["version"] == 1


def test_ingest_long_file_equals_folder(root, files, tmp_path):
    frames = [pd.read_parquet(f).assign(Ticker=f.stem) for f in sorted(files.glob("*.parquet"))]
    long = tmp_path / "long.csv"
    pd.concat(frames).sample(frac=1.0, random_state=0).to_csv(long, index=False)  # any row order
    entry, created = panel.ingest_panel(str(long), "L", root, symbol_column="ticker")
    folder = raw_manifest(root).get("P")
    assert created and [s["content_sha256"] for s in entry["symbols"]] == [
        s["content_sha256"] for s in folder["symbols"]
    ]
    with pytest.raises(DataError, match="no symbol column 'sym'"):
        panel.ingest_panel(str(long), "L2", root, symbol_column="sym")


def test_one_bad_symbol_writes_nothing(files, tmp_path):
    bad = tmp_path / "in"
    bad.mkdir()
    for f in sorted(files.glob("*.parquet"))[:2]:
        (bad / f.name).write_bytes(f.read_bytes())
    df = pd.read_parquet(bad / "S0001.parquet")
    df.loc[5, "close"] = -1.0
    df.to_parquet(bad / "S0001.parquet")
    r = tmp_path / "data"
    with pytest.raises(DataError, match="non-positive price"):
        panel.ingest_panel(str(bad), "B", r)
    assert not (r / "raw").exists()


def test_cli_synth_and_ingest_panel(tmp_path):
    r = run_cli(
        ["-m", "patchtst_hpo.data", "synth", "--symbols", "3", "--days", "200", "--out", str(tmp_path / "s")]
    )
    check(r)
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "S0000.parquet",
        "S0001.parquet",
        "S0002.parquet",
    ]

    def ingest(spec: str):
        return run_cli(
            ["-m", "patchtst_hpo.data", "--root", str(tmp_path / "d"), "ingest-panel", spec, "--name", "X"]
        )

    r = ingest(str(tmp_path / "s"))
    check(r)
    assert "registered: panel X v1 (3 symbols, 600 rows" in r.stdout
    r = ingest(str(tmp_path / "nope"))
    assert r.returncode == 2 and "no per-symbol files found" in r.stderr and "Traceback" not in r.stderr


# ---------- features, windows, splits ----------


def test_features_per_symbol_equal_single_series(root, files):
    df, codes, names = blocks_of(root)
    cols = features.feature_names("ohlcv5")
    for i, sym in enumerate(names):
        raw = pd.read_parquet(files / f"{sym}.parquet").set_index("date")
        single = make_features(raw, "ohlcv5")
        mine = df[codes == i].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine[["date", *cols]], single[["date", *cols]])
    entry = processed_manifest(root).get("P.ohlcv5")
    assert entry["symbols"] == SYMBOLS and len(entry["inputs"]) == SYMBOLS + 1


def test_windows_never_cross_symbols_and_purge_per_symbol(root, cfg_factory):
    purge = 7
    dm, cfg = dm_for(root, cfg_factory, f"data.split.purge={purge}")
    df, codes, _ = blocks_of(root)
    ctx, h = 20, int(cfg.task.horizon)
    dates = df["date"].to_numpy()
    for split, ds in dm.datasets.items():
        a = ds.anchors.numpy()
        assert len(a) > 0
        first, last = a - ctx + 1, a + h  # window start and last label row
        assert (first >= 0).all() and (codes[first] == codes[a]).all() and (codes[last] == codes[a]).all(), (
            split
        )
    # calendar boundaries shared by all symbols; purge counted in each symbol's own rows
    tr, va, te = (dm.datasets[s].anchors.numpy() for s in ("train", "val", "test"))
    assert dates[tr].max() < dates[va].min() and dates[va].max() < dates[te].min()
    for i in range(SYMBOLS):
        rows = np.flatnonzero(codes == i)
        t_i, v_i = tr[codes[tr] == i], va[codes[va] == i]
        first_val_row = v_i.min() - (ctx - 1)  # the val segment's first row
        assert first_val_row - (t_i.max() + h + 1) == purge, i  # rows between the segments = purge
        assert rows[0] <= t_i.min() - ctx + 1
    # each symbol's first row after its train segment is the same calendar date (the shared boundary)
    starts = {dates[v_i.min() - ctx + 1 - purge] for i in range(SYMBOLS) if len(v_i := va[codes[va] == i])}
    assert len(starts) == 1


def test_batches_gather_the_right_rows(root, cfg_factory):
    dm, _ = dm_for(root, cfg_factory, "data.normalize=none")
    df, _, _ = blocks_of(root)
    ds = dm.datasets["train"]
    x, y = ds[[0, len(ds) - 1]]
    cols = features.feature_names("ohlcv5")
    a = ds.anchors[-1].item()
    np.testing.assert_allclose(x[1].numpy(), df[cols].to_numpy()[a - 19 : a + 1], rtol=1e-6)
    assert y.shape == (2,)


@pytest.mark.parametrize("by", ["pooled", "symbol"])
def test_normalisation_from_training_rows_only(root, cfg_factory, by):
    dm, _ = dm_for(root, cfg_factory, f"data.normalize_by={by}")
    raw, _ = dm_for(root, cfg_factory, "data.normalize=none")
    df, codes, _ = blocks_of(root)
    xz, xr = dm.datasets["train"].x.numpy(), raw.datasets["train"].x.numpy()
    train_rows = np.zeros(len(df), bool)
    for a in dm.datasets["train"].anchors.numpy():  # every train row is inside some train window
        train_rows[a - 19 : a + 2] = True
    if by == "pooled":
        rows = np.flatnonzero(train_rows)
        mean, std = xr[rows].mean(0), xr[rows].std(0)
        np.testing.assert_allclose(xz, (xr - mean) / std, rtol=1e-4, atol=1e-4)
    else:
        for i in range(SYMBOLS):
            rows = np.flatnonzero(train_rows & (codes == i))
            np.testing.assert_allclose(xz[rows].mean(0), 0, atol=1e-4)
            np.testing.assert_allclose(xz[rows].std(0), 1, atol=1e-3)
        later = np.flatnonzero(~train_rows)  # val/test rows are transformed, never used for the fit
        assert abs(xz[later].mean()) > 1e-3


def test_info_records_every_input(root, cfg_factory):
    dm, _ = dm_for(root, cfg_factory)
    info = dm.info
    names = [i["name"] for i in info["inputs"]]
    assert names == ["P", *(f"P/S{i:04d}" for i in range(SYMBOLS))]
    assert all(len(i["sha256"]) == 64 and i["version"] == 1 for i in info["inputs"])
    assert info["symbols"] == SYMBOLS and info["train_windows"] == info["splits"]["train"]["samples"]
    json.dumps(info)  # goes into metrics.json as is


# ---------- train_fraction and shuffle_labels ----------


def test_train_fraction_is_a_seeded_nested_subset(root, cfg_factory):
    full, _ = dm_for(root, cfg_factory)
    half, _ = dm_for(root, cfg_factory, "data.train_fraction=0.5")
    again, _ = dm_for(root, cfg_factory, "data.train_fraction=0.5")
    quarter, _ = dm_for(root, cfg_factory, "data.train_fraction=0.25")
    other, _ = dm_for(root, cfg_factory, "data.train_fraction=0.5", seed=1)
    n = len(full.datasets["train"])
    a = {
        k: set(d.datasets["train"].anchors.tolist())
        for k, d in locals().items()
        if k in ("full", "half", "again", "quarter", "other")
    }
    assert len(a["half"]) == round(0.5 * n) and half.info["train_windows"] == len(a["half"])
    assert half.info["train_windows_available"] == n
    assert a["half"] == a["again"] and a["half"] != a["other"]
    assert a["quarter"] < a["half"] < a["full"]
    assert len(half.datasets["val"]) == len(full.datasets["val"])  # evaluation splits untouched
    for bad in ("0", "1.5", "-0.1"):
        with pytest.raises(ConfigError, match="data.train_fraction"):
            dm_for(root, cfg_factory, f"data.train_fraction={bad}")


def test_shuffle_labels_touches_training_labels_only(root, cfg_factory):
    real, _ = dm_for(root, cfg_factory)
    shuf, _ = dm_for(root, cfg_factory, "data.shuffle_labels=true")
    tr = real.datasets["train"].anchors
    y_real, y_shuf = real.datasets["train"].y[tr], shuf.datasets["train"].y[tr]
    assert not np.array_equal(y_real, y_shuf) and sorted(y_real.tolist()) == sorted(y_shuf.tolist())
    for split in ("val", "test"):
        a = real.datasets[split].anchors
        assert np.array_equal(real.datasets[split].y[a], shuf.datasets[split].y[a]), split
    assert shuf.info["shuffle_labels"] is True


def test_shuffle_with_fit_on_train_val_keeps_val_labels(root, cfg_factory):
    shuf, _ = dm_for(root, cfg_factory, "data.shuffle_labels=true", "data.fit_on=train_val")
    real, _ = dm_for(root, cfg_factory, "data.fit_on=train_val")
    a = real.datasets["val"].anchors
    assert np.array_equal(real.datasets["val"].y[a], shuf.datasets["val"].y[a])


def test_single_series_info_gains_panel_fields(tmp_path, cfg_factory, data_dir):
    """The single-series path keeps its split rows and reports one symbol and its training windows."""
    cfg = cfg_factory(f"paths.data_dir={data_dir}")
    dm = WindowDataModule(cfg.data, cfg.task, 0)
    dm.setup()
    assert dm.info["symbols"] == 1 and dm.info["splits"]["train"]["rows"][0] == 0
    assert dm.info["train_windows"] == dm.info["splits"]["train"]["samples"]


def test_single_series_name_as_panel_fails_with_fix(root, files):
    r = root
    from patchtst_hpo.data.ingest import ingest

    ingest(files / "S0000.parquet", "ONE", r)
    with pytest.raises(DataError, match="single series, not a panel"):
        panel.build(r, "ONE", "ohlcv5")
    with pytest.raises(DataError, match=r"panel 'NOPE' is not in .*\(panels: (L, )?P\)"):
        panel.build(r, "NOPE", "ohlcv5")


# ---------- end to end ----------


def test_train_on_a_panel(root, tmp_path):
    run = tmp_path / "run"
    r = run_cli(
        [
            "-m",
            "patchtst_hpo.train",
            *FAST,
            "budget=tiny",
            "data=panel",
            "data.panel=P",
            "data.context_length=30",
            f"paths.data_dir={root}",
            f"hydra.run.dir={run}",
            "data.train_fraction=0.5",
        ]
    )
    check(r)
    m = json.loads((run / "metrics.json").read_text())
    assert m["data"]["id"] == "P.a25" and m["data"]["symbols"] == SYMBOLS
    assert [i["name"] for i in m["data"]["inputs"]][0] == "P" and len(m["data"]["inputs"]) == SYMBOLS + 1
    assert m["data"]["train_windows"] == round(0.5 * m["data"]["train_windows_available"])
    assert 0 <= m["test"]["auc"] <= 1


# ---------- scale ----------


def test_panel_bench_rows_small():
    from patchtst_hpo.bench.panel import panel_loader_rows

    build, loader = panel_loader_rows(
        symbols=6, days=700, loader_batches=30, model_steps=2, budget="tiny", batch_size=64
    )
    assert build["windows"] > 0 and build["build_seconds"] > 0 and build["peak_rss_gib"] > 0
    assert loader["loader_batches_per_s"] > 0 and loader["model_steps_per_s"] > 0
    assert loader["model"].startswith("tiny ")


@pytest.mark.slow
def test_panel_scale_500_symbols_5000_days():
    """The issue's scale bar: builds in < 60 s and < 4 GB RSS; the loader outpaces the 2M model 20x."""
    from patchtst_hpo.bench.panel import panel_loader_rows

    build, loader = panel_loader_rows(symbols=500, days=5000, loader_batches=500, model_steps=10)
    print(build, loader)
    assert build["windows"] > 2_300_000
    assert build["build_seconds"] < 60 and build["peak_rss_gib"] < 4, build
    assert loader["loader_to_model_ratio"] >= 20, loader
