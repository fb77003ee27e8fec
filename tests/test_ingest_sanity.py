"""Data sanity at ingest: names, OHLC order, intraday bars, integer/epoch dates, UTC offsets, chunked reading.

Each refusal is one line naming the lines and the fix (exit 2 from the CLI), with nothing written; each
repair happens only with its option and says so. Ends with a bad-file corpus through the real CLI entry.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re

import numpy as np
import pandas as pd
import pytest

from patchtst_hpo.data.__main__ import main as data_main
from patchtst_hpo.data.ingest import ingest, load_raw
from patchtst_hpo.errors import DataError
from tests.helpers import run_cli, snapshot, synthetic_ohlcv


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "data"
    r.mkdir()
    return r


def _csv(tmp_path, df: pd.DataFrame, name="x.csv", **kw):
    path = tmp_path / name
    df.to_csv(path, index=False, **kw)
    return path


def _refused(path, root, pattern, **kw):
    before = snapshot(root)
    with pytest.raises(DataError) as e:
        ingest(path, "SYN", root, **kw)
    msg = str(e.value)
    assert "\n" not in msg and re.search(pattern, msg), msg
    assert snapshot(root) == before
    return msg


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["../../x", "/abs/x", "..", "", "manifest.json", ".hidden", "a b", "a/b/c"])
def test_unsafe_dataset_names_are_refused_and_nothing_is_written(tmp_path, root, name):
    path = _csv(tmp_path, synthetic_ohlcv(300))
    with pytest.raises(DataError, match="dataset name"):
        ingest(path, name, root)
    assert list(root.rglob("*")) == []  # not even a lock


def test_cli_names_one_line_no_lock(tmp_path, root):
    path = _csv(tmp_path, synthetic_ohlcv(300))
    for name in ("manifest.json", "../x", "SPY/daily"):
        r = run_cli(["-m", "patchtst_hpo.data", "--root", str(root), "ingest", str(path), "--name", name])
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()], r.stderr
        assert r.stderr.startswith("error: --name ") and "Traceback" not in r.stderr
    assert list(root.rglob("*")) == []


# ---------------------------------------------------------------- OHLC order


@pytest.mark.parametrize(
    "edit, example",
    [
        ({"High": 0.5}, "high"),  # high below open/close (and low)
        ({"Low": 1e6}, "low"),  # low above open/close
        ({"Close": 1e6}, "close"),  # close above high
        ({"Open": 1e-3}, "open"),  # open below low
    ],
)
def test_ohlc_order_refused_with_lines_or_repaired_on_request(tmp_path, root, edit, example, caplog):
    df = synthetic_ohlcv(300)
    for col, v in edit.items():
        df.loc[[10, 40], col] = v
    path = _csv(tmp_path, df)
    _refused(path, root, r"2 row\(s\) break low <= open, close <= high at lines 12, 42 .*--repair-ohlc")
    with caplog.at_level(logging.WARNING):
        e, _ = ingest(path, "SYN", root, repair_ohlc=True)
    assert "--repair-ohlc: high/low widened on 2 row(s) at lines 12, 42" in caplog.text
    got = load_raw(root, "SYN")[0]
    assert (got["low"] <= got[["open", "close"]].min(axis=1)).all()
    assert (got["high"] >= got[["open", "close"]].max(axis=1)).all()
    assert e["ingest_args"]["repair_ohlc"] is True


# ---------------------------------------------------------------- intraday bars


def _hourly(days=300, per_day=7):
    day = synthetic_ohlcv(days)
    rows = []
    for _, r in day.iterrows():
        for h in range(per_day):
            p = r["Open"] + (r["Close"] - r["Open"]) * h / (per_day - 1)
            rows.append(
                {
                    "Date": r["Date"] + pd.Timedelta(hours=9 + h),
                    "Open": p,
                    "High": max(p, r["High"] if h == 2 else p),
                    "Low": min(p, r["Low"] if h == 4 else p),
                    "Close": p,
                    "Volume": r["Volume"] / per_day,
                }
            )
    return day, pd.DataFrame(rows)


def test_intraday_bars_refused_or_aggregated_to_daily_on_request(tmp_path, root, caplog):
    day, hourly = _hourly()
    path = _csv(tmp_path, hourly)
    _refused(
        path,
        root,
        r"intraday bars: 300 date\(s\) in lines 2-2101 have several rows \(at lines 2, 3, 4, \.\.\..*--aggregate-daily",
    )
    with caplog.at_level(logging.WARNING):
        e, _ = ingest(path, "SYN", root, aggregate_daily=True)
    assert "--aggregate-daily: 2100 intraday rows -> 300 daily bars" in caplog.text
    got = load_raw(root, "SYN")[0]
    assert e["rows"] == 300 and list(got.index) == list(day["Date"])
    np.testing.assert_allclose(got["open"], day["Open"])
    np.testing.assert_allclose(got["close"], day["Close"])
    np.testing.assert_allclose(got["high"], np.maximum(day["High"], day[["Open", "Close"]].max(axis=1)))
    np.testing.assert_allclose(got["volume"], day["Volume"])


def test_one_close_time_per_day_is_daily_data_and_keeps_its_dates(tmp_path, root, caplog):
    df = synthetic_ohlcv(300)
    df["Date"] = df["Date"] + pd.Timedelta(hours=16)
    with caplog.at_level(logging.WARNING):
        e, _ = ingest(_csv(tmp_path, df), "SYN", root)
    assert e["first_date"] == "2000-01-03" and "time of day (e.g. 16:00:00)" in caplog.text
    assert (load_raw(root, "SYN")[0].index == df["Date"].dt.normalize()).all()


# ---------------------------------------------------------------- integer and epoch dates


def test_integer_yyyymmdd_dates_are_read_as_dates_in_csv_and_parquet(tmp_path, root):
    df = synthetic_ohlcv(300)
    ints = df.assign(Date=df["Date"].dt.strftime("%Y%m%d").astype(int))
    e1, _ = ingest(_csv(tmp_path, ints), "A", root)
    ints.to_parquet(tmp_path / "x.parquet")
    e2, _ = ingest(tmp_path / "x.parquet", "B", root)
    e3, _ = ingest(_csv(tmp_path, df, "iso.csv", date_format="%Y-%m-%d"), "C", root)
    assert e1["first_date"] == e2["first_date"] == "2000-01-03"
    assert e1["content_sha256"] == e2["content_sha256"] == e3["content_sha256"]


@pytest.mark.parametrize(
    "unit, words", [("s", "epoch seconds"), ("ms", "epoch milliseconds"), ("ns", "epoch nanoseconds")]
)
def test_epoch_dates_are_refused_never_1970(tmp_path, root, unit, words):
    df = synthetic_ohlcv(300)
    epochs = df.assign(Date=(df["Date"] - pd.Timestamp("1970-01-01")) // pd.Timedelta(1, unit=unit))
    epochs.to_parquet(tmp_path / "e.parquet")
    _refused(tmp_path / "e.parquet", root, f"holds numbers .*not dates; they look like {words}")
    _refused(_csv(tmp_path, epochs), root, f"they look like {words}")


def test_invalid_yyyymmdd_integers_name_their_rows(tmp_path, root):
    df = synthetic_ohlcv(300)
    ints = df.assign(Date=df["Date"].dt.strftime("%Y%m%d").astype(int))
    ints.loc[5, "Date"] = 20000231
    _refused(
        _csv(tmp_path, ints),
        root,
        r"1 integer date\(s\) .* at line 7 are not valid yyyymmdd \(values \[20000231\]\)",
    )


# ---------------------------------------------------------------- UTC offsets


def test_mixed_utc_offsets_take_each_rows_local_date_with_one_line(tmp_path, root, caplog):
    df = synthetic_ohlcv(300, start="2020-01-02")
    local = df["Date"].dt.tz_localize("America/New_York") + pd.Timedelta(hours=16)
    text = df.assign(Date=local.map(lambda t: t.isoformat()))
    assert {s[-6:] for s in text["Date"]} == {"-05:00", "-04:00"}  # across daylight saving
    with caplog.at_level(logging.WARNING):
        e, _ = ingest(_csv(tmp_path, text), "SYN", root)
    said = [r.getMessage() for r in caplog.records if "UTC offsets" in r.getMessage()]
    assert (
        len(said) == 1
        and "mixed UTC offsets (-04:00, -05:00)" in said[0]
        and "local (exchange) date" in said[0]
    )
    assert (load_raw(root, "SYN")[0].index == df["Date"]).all() and e["rows"] == 300


# ---------------------------------------------------------------- chunks


def test_chunked_reading_gives_the_same_table_and_the_right_lines(tmp_path, root):
    df = synthetic_ohlcv(400)
    path = _csv(tmp_path, df, date_format="%Y-%m-%d")
    e1, _ = ingest(path, "A", root, chunk_rows=37)
    e2, _ = ingest(path, "B", root)
    assert e1["content_sha256"] == e2["content_sha256"]
    lines = path.read_text().splitlines()
    lines[300] = lines[300].replace(lines[300].split(",")[4], "n/a")  # file line 301: close
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataError, match=r"column 'close' that are not finite numbers at line 301 \(text \['n/a'\]\)"
    ):
        ingest(path, "C", root, chunk_rows=37)
    df.loc[[100, 350], "Date"] = df.loc[10, "Date"]  # duplicates in three different chunks
    with pytest.raises(DataError, match=r"2 duplicate date\(s\) in 'date' at lines 12, 102, 352"):
        ingest(_csv(tmp_path, df, "dup.csv"), "D", root, chunk_rows=37)


# ---------------------------------------------------------------- the bad-file corpus, through the CLI entry


def _bad_files(tmp_path) -> dict:
    """name -> path of a file that must be refused."""
    d = tmp_path / "bad"
    d.mkdir()
    df = synthetic_ohlcv(300)
    out = {}

    def csv(name, frame, **kw):
        out[name] = _csv(d, frame, name + ".csv", **kw)

    def text(name, body: str | bytes, suffix=".csv"):
        p = d / (name + suffix)
        p.write_bytes(body if isinstance(body, bytes) else body.encode())
        out[name] = p

    good = df.to_csv(index=False, date_format="%Y-%m-%d")
    csv("high_below_low", df.assign(High=df["Low"] * 0.9))
    csv("close_above_high", df.assign(Close=df["High"] * 1.1))
    csv("hourly", _hourly(200)[1])
    csv("epoch_s", df.assign(Date=(df["Date"] - pd.Timestamp("1970-01-01")) // pd.Timedelta(1, unit="s")))
    csv("excel_serial", df.assign(Date=np.arange(300) + 36000))
    csv("bad_yyyymmdd", df.assign(Date=[20001301] * 300))
    df.assign(Date=(df["Date"] - pd.Timestamp("1970-01-01")) // pd.Timedelta(1, unit="ns")).to_parquet(
        d / "ns.parquet"
    )
    out["parquet_int_ns"] = d / "ns.parquet"
    csv("dup_dates", df.assign(Date=df["Date"].iloc[0]))
    csv("nan_price", df.assign(Open=np.nan))
    csv("neg_volume", df.assign(Volume=-1.0))
    csv("zero_price", df.assign(Low=0.0))
    csv("text_dates", df.assign(Date="yesterday"))
    csv(
        "mixed_formats",
        df.assign(Date=[d.strftime("%Y-%m-%d" if i % 2 else "%d/%m/%Y") for i, d in enumerate(df["Date"])]),
    )
    text("empty", "")
    text("header_only", "Date,Open,High,Low,Close,Volume\n")
    text("binary", bytes(range(256)) * 8)
    text("nul_bytes", good.replace("\n2000-01-04", "\n\x00\x00"))
    text("truncated_gz", b"\x1f\x8b\x08\x00garbage", suffix=".csv.gz")
    text("bad_parquet", b"PAR1 nope PAR1", suffix=".parquet")
    text("ragged", good.replace("\n2000-01-10,", "\n2000-01-10,1,2,3,"))
    text("no_date_header", good.replace("Date,", "When,"))
    text("semicolons", good.replace(",", ";"))
    text("utf16", good.encode("utf-16"))
    text("only_blank_lines", "Date,Open,High,Low,Close,Volume\n\n\n\n")
    text("inf_volume", good.replace(good.splitlines()[5].split(",")[-1], "inf", 1))
    text("huge_number", good.replace(good.splitlines()[7].split(",")[1], "1e400", 1))
    out["missing_file"] = d / "nope.csv"
    out["a_folder"] = d
    return out


def test_bad_file_corpus_one_line_each_no_traceback_nothing_written(tmp_path, root):
    files = _bad_files(tmp_path)
    tally = {"tried": 0, "refused_one_line": 0, "accepted": [], "tracebacks": [], "multi_line": []}
    for name, path in files.items():
        tally["tried"] += 1
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = data_main(["--root", str(root), "ingest", str(path), "--name", "BAD", "--allow-short"])
        except BaseException as e:  # a traceback at the CLI
            tally["tracebacks"].append(f"{name}: {type(e).__name__}: {e}")
            continue
        lines = [x for x in err.getvalue().splitlines() if x.startswith("error:")]
        if code == 0:
            tally["accepted"].append(name)
        elif code == 2 and len(lines) == 1:
            tally["refused_one_line"] += 1
        else:
            tally["multi_line"].append(name)
    print(f"bad-file corpus: {tally}")
    assert tally["refused_one_line"] == tally["tried"] == len(files), tally
    assert not (root / "raw" / "BAD").exists()


@pytest.mark.slow
def test_a_100_mb_intraday_csv_is_read_in_chunks_within_twice_its_size_above_start_up(tmp_path):
    """~90 MB of 30-minute bars (1.5M rows): aggregated to daily bars with a peak RSS (VmHWM of the child)
    below start-up + 2.5x the file; refused without --aggregate-daily at its first chunk."""
    import subprocess
    import sys

    n_days, per = 150_000, 10
    rng = np.random.default_rng(0)
    days = pd.date_range("1800-01-01", periods=n_days, freq="D")
    t = (days.values[:, None] + (np.arange(per) * 30 + 570).astype("timedelta64[m]")).ravel()
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, len(t))))
    path = tmp_path / "big.csv"
    frame = pd.DataFrame(
        {
            "Date": pd.DatetimeIndex(t).strftime("%Y-%m-%d %H:%M:%S"),
            "Open": close.round(4),
            "High": (close * 1.001).round(4),
            "Low": (close * 0.999).round(4),
            "Close": close.round(4),
            "Volume": rng.integers(1000, 100000, len(t)),
        }
    )
    frame.to_csv(path, index=False)
    del frame, t, close
    size_mb = path.stat().st_size / 2**20

    def peak(*args):
        code = (
            "import re, sys; from patchtst_hpo.data.__main__ import main; "
            "hwm = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); "
            "base = hwm(); rc = main(sys.argv[1:]); print('MB', base / 1024, hwm() / 1024); sys.exit(rc)"
        )
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
        start, top = map(float, r.stdout.split("MB")[-1].split())
        return r, start, top

    r, start, top = peak(
        "--root", str(tmp_path / "d"), "ingest", str(path), "--name", "BIG", "--aggregate-daily"
    )
    print(
        f"{size_mb:.0f} MB CSV: start-up {start:.0f} MB, peak {top:.0f} MB ({(top - start) / size_mb:.2f}x the file above start-up)"
    )
    assert r.returncode == 0 and "150000 rows" in r.stdout, r.stderr[-2000:]
    assert top - start < 2.5 * size_mb  # measured 1.96x (300 MB peak, 129 MB start-up, 87 MiB file)
    r, _, top2 = peak("--root", str(tmp_path / "d2"), "ingest", str(path), "--name", "BIG")
    assert r.returncode == 2 and "intraday bars" in r.stderr and top2 < top
