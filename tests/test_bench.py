import json
import time

import pytest
import torch

from patchtst_hpo.bench.loops import timed_loop
from patchtst_hpo.bench.sections import param_accounting
from patchtst_hpo.models.arch_grid import budget_candidates, count_params, dims_from_cfg
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
        "panel",
        "trial_overhead",
        "pruning",
        "threads",
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
    build, loader = res["panel"]
    assert build["symbols"] == 3 and build["windows"] > 0 and build["peak_rss_gib"] > 0
    assert loader["loader_batches_per_s"] > 0 and loader["loader_to_model_ratio"] > 0
    assert res["trial_overhead"]["trials"] == 2 and res["trial_overhead"]["median_overhead_seconds"] > 0
    # each pruning measurement is a fresh process, the threads section two real sweeps: full mode (and the
    # tests below), like hf
    assert "skipped" in res["pruning"] and "skipped" in res["threads"]
    acc = res["param_accounting_2b"]
    assert acc["all_exact"] and acc["mismatches"] == [] and acc["candidates"] == 15
    assert "skipped" in res["gpu"] or res["gpu"]["rows"][0]["ours_vs_plain_eager"] > 0
    assert (out / "results.md").read_text().startswith("# Benchmark")


def test_timed_rates_count_exactly_the_batches_they_time():
    # The HF comparison once counted 2 batches while timing 4: timed_loop counts and times the same ones.
    sizes = [7, 5, 3, 11, 13, 2]
    batches = [(torch.zeros(n, 1), torch.zeros(n)) for n in sizes]
    seen = []
    t = timed_loop(batches, lambda x, y: (seen.append(len(y)), time.sleep(0.01)), warmup=2)
    assert seen == sizes  # every batch ran
    assert t.batches == 4 and t.samples == 3 + 11 + 13 + 2
    assert 0.035 < t.seconds < 1.0  # the 4 timed steps slept 10 ms each; the 2 warm-ups are not in the span
    assert t.rate == t.samples / t.seconds
    with pytest.raises(ValueError, match="warm-up"):
        timed_loop(batches, lambda x, y: None, warmup=6)


def test_param_accounting_flags_a_wrong_count(cfg_factory):
    cfg = cfg_factory("budget=2M")
    dims, cands = dims_from_cfg(cfg), budget_candidates(cfg)[:3]
    ok, _ = param_accounting(cands, dims)
    assert ok == []
    wrong, _ = param_accounting(cands, dims, count=lambda a, d: count_params(a, d) + (a == cands[1].arch))
    assert wrong == [{"arch": cands[1].arch.name, "counted": cands[1].params + 1, "built": cands[1].params}]


@pytest.mark.slow
def test_gpu_section_code_runs_on_cpu(data_dir, tmp_path):
    # The GPU rows' code (plain loop vs our path through build_trainer/build_model, MFU, partial results)
    # run on CPU with the cpu trainer: a plumbing check of what only a lent GPU measures for real.
    from patchtst_hpo.bench.gpu import gpu_section
    from patchtst_hpo.config import compose

    bcfg = compose(
        "bench",
        [
            "bench=smoke",
            "gpu_device=cpu",
            "gpu_trainer=cpu",
            "gpu_budgets=[tiny]",
            "gpu_compile_budgets=[]",
            "gpu_batch_size=64",
            "gpu_matmul_n=128",
            "steps=3",
            "warmup=2",
        ],
    )
    out = gpu_section(bcfg, str(data_dir), tmp_path / "partial.json")
    row = out["rows"][0]
    assert row["budget"] == "tiny" and row["batch_size"] == 64
    assert row["plain_eager"]["timed_batches"] == row["ours_eager"]["timed_batches"] == 3
    assert row["ours_eager"]["samples_per_s"] > 0 and row["ours_vs_plain_eager"] > 0
    assert row["ours_eager"]["setup_to_first_step_seconds"] > 0
    assert json.loads((tmp_path / "partial.json").read_text())["rows"][0]["budget"] == "tiny"


@pytest.mark.slow
def test_threads_section_runs_both_policies(data_dir):
    from omegaconf import OmegaConf

    from patchtst_hpo.bench.threads import threads_section

    t = {"trials": 1, "epochs": 1, "train_batches": 2, "busy": 1, "busy_limit_s": 300, "repeats": 1}
    res = threads_section(OmegaConf.create({"threads": t}), str(data_dir))
    assert res["auto"][0]["trials"] == res["torch_default"][0]["trials"] == 1
    assert res["torch_default_vs_auto"] > 0 and res["busy_processes"] == 1


def test_pruning_section_rows():
    from omegaconf import OmegaConf

    from patchtst_hpo.bench.pruning import pruning_section

    p = {"sizes": [10], "storages": ["journal"], "steps": 2, "repeats": 1}
    res = pruning_section(OmegaConf.create({"pruning": p}))
    (row,) = res["rows"]
    assert (row["storage"], row["finished_trials"], row["same_decisions"]) == ("journal", 10, True)
    assert row["optuna_cpu_s"] > 0 and row["ours_cpu_s"] > 0 and res["flat"]["journal_ours_cpu_s"] == 1.0
