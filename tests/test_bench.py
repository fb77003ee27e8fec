import json

from tests.helpers import run_cli


def test_bench_smoke_writes_results_schema(tmp_path, data_dir):
    out = tmp_path / "bench"
    r = run_cli(["-m", "patchtst_hpo.bench", "bench=smoke", f"data_dir={data_dir}", f"hydra.run.dir={out}"])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    assert set(res) >= {
        "meta",
        "matmul_gflops",
        "training",
        "hf",
        "data",
        "trial_overhead",
        "param_accounting_2b",
        "gpu",
    }
    assert res["meta"]["mode"] == "smoke" and res["matmul_gflops"] > 0
    row = res["training"][0]
    for key in (
        "plain_samples_per_s",
        "lightning_samples_per_s",
        "lightning_vs_plain",
        "mfu_vs_matmul",
        "train_flops_per_sample",
        "params",
    ):
        assert row[key] > 0, key
    assert res["data"]["loader_windows_per_s"] > 0 and res["data"]["a25_build_seconds_synthetic"] > 0
    assert res["trial_overhead"]["trials"] == 2 and res["trial_overhead"]["median_overhead_seconds"] > 0
    assert res["param_accounting_2b"]["all_exact"] and res["param_accounting_2b"]["candidates"] == 15
    assert "skipped" in res["gpu"] or res["gpu"]["rows"]
    assert (out / "results.md").read_text().startswith("# Benchmark")
