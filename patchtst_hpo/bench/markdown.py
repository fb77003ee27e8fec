"""results.json -> results.md: the tables docs/performance.md quotes."""

from __future__ import annotations


def markdown(res: dict) -> str:
    m = res["meta"]
    lines = [
        f"# Benchmark {m['date']} ({m['mode']})",
        "",
        f"{m['cpu']}, {m['threads']} torch threads, torch {m['torch']}; matmul fp32 "
        f"{res['matmul_gflops']:.1f} GFLOP/s (n={m['matmul_n']}). Medians of {m['repeats']} runs.",
        "",
        "| budget | arch | params | batch | plain loop samples/s | our path samples/s | ours / plain | "
        "GFLOP/s | MFU vs matmul |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res.get("training", []):
        lines.append(
            f"| {r['budget']} | `{r['arch']}` | {r['params']:,} | {r['batch_size']} | "
            f"{r['plain_samples_per_s']:.0f} | {r['lightning_samples_per_s']:.0f} | "
            f"{r['lightning_vs_plain']:.1%} | {r['achieved_gflops']:.1f} | {r['mfu_vs_matmul']:.1%} |"
        )
    lines += ["", "HuggingFace PatchTSTForClassification: " + _hf(res["hf"])]
    d = res["data"]
    if "skipped" not in d:
        lines += [
            "",
            f"Data path: loader {d['loader_windows_per_s']:,.0f} windows/s vs 2M model "
            f"{d['model_samples_per_s']:,.0f} samples/s = {d['loader_vs_model']:.0f}x; a25 build "
            f"{d['a25_build_seconds_sample']:.3f}s on the sample ({d['sample_rows']} rows), "
            f"{d['a25_build_seconds_synthetic']:.2f}s on {d['synthetic_rows']:,} synthetic rows.",
        ]
    if isinstance(res["panel"], list):
        b, r = res["panel"]
        lines += [
            "",
            f"Panel ({b['symbols']} symbols x {b['days']} days, {b['windows']:,} windows): ingest "
            f"{b['ingest_seconds']:.1f}s, build {b['build_seconds']:.1f}s ({b['build_cpu_seconds']:.1f}s CPU), "
            f"peak RSS {b['peak_rss_gib']:.2f} GiB; train loader {r['loader_batches_per_s']:,.0f} batches/s vs "
            f"{r['model']} {r['model_steps_per_s']:.2f} steps/s = {r['loader_to_model_ratio']:,.0f}x.",
        ]
    o = res["trial_overhead"]
    lines += [
        "",
        "Per-trial overhead: "
        + (
            o.get("error", o.get("skipped", ""))[:200]
            if "median_trial_seconds" not in o
            else f"median {o['median_overhead_seconds']:.2f}s of a {o['median_trial_seconds']:.2f}s tiny trial "
            f"(over {o['trials']} trials); sweeper process start-up {o['startup_seconds']:.1f}s once."
        ),
    ]
    lines += _pruning(res["pruning"]) + _threads(res["threads"])
    p = res["param_accounting_2b"]
    if "skipped" not in p:
        verdict = (
            "counted exactly"
            if p["all_exact"]
            else "MISMATCH: "
            + ", ".join(f"{x['arch']} counted {x['counted']:,} built {x['built']:,}" for x in p["mismatches"])
        )
        lines += [
            "",
            f"2B param accounting: {p['candidates']} candidates built on the meta device and {verdict} in "
            f"{p['seconds']:.2f}s, peak Python allocations {p['peak_python_mib']:.1f} MiB.",
        ]
    lines += ["", *_gpu(res["gpu"])]
    if "transfer" in res:  # issue 23's section (bench/transfer.py)
        from patchtst_hpo.bench.transfer import transfer_markdown

        lines += transfer_markdown(res["transfer"])
    return "\n".join(lines) + "\n"


def _hf(hf: dict) -> str:
    if "skipped" in hf:
        return hf["skipped"]
    return (
        f"{hf['budget']}: ours `{hf['ours_arch']}` {hf['ours_params']:,} params at {hf['ours_samples_per_s']:.0f}/s "
        f"vs HF ({hf['hf_layers']} layers) {hf['hf_params']:,} params at {hf['hf_samples_per_s']:.0f}/s: "
        f"ours is {hf['ours_vs_hf']:.1f}x ({hf['hf_timed_batches']} timed batches each; {hf['note']})"
    )


def _gpu(g: dict) -> list[str]:
    if "skipped" in g:
        return ["GPU: " + g["skipped"]]
    lines = [
        f"GPU: {g['device']}, torch {g['torch']} (CUDA {g['cuda']}); bf16 matmul peak {g['matmul_tflops_bf16']:.0f} "
        "TFLOP/s measured in this run. bf16 autocast, data on the device, steady state (set-up apart).",
        "",
        "| budget | arch | batch | mode | plain samples/s | our path samples/s | ours / plain | our TFLOP/s | "
        "our MFU | our set-up to first step s |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in g["rows"]:
        for tag in ("eager", "compiled"):
            if f"ours_{tag}" not in r:
                continue
            p, o = r[f"plain_{tag}"], r[f"ours_{tag}"]
            lines.append(
                f"| {r['budget']} | `{r['arch']}` | {r['batch_size']} | {tag} | {p['samples_per_s']:,.0f} | "
                f"{o['samples_per_s']:,.0f} | {r[f'ours_vs_plain_{tag}']:.1%} | {o['tflops']:.0f} | {o['mfu']:.1%} | "
                f"{o['setup_to_first_step_seconds']:.1f} |"
            )
    return lines


def _pruning(p: dict) -> list[str]:
    if "skipped" in p:
        return []
    lines = [
        "",
        f"Pruning CPU per trial (a job's open + {p['steps']} x report/should_prune, "
        f"{p['pruner']['name']}, medians of {p['repeats']}; Optuna's path vs ours, same decisions):",
        "",
        "| storage | finished trials | Optuna's path s | ours, fresh process s | ours, reused process s | "
        "Optuna / ours | same decisions |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in p["rows"]:
        lines.append(
            f"| {r['storage']} | {r['finished_trials']:,} | {r['optuna_cpu_s']:.3f} | {r['ours_cpu_s']:.3f} | "
            f"{r['ours_reused_process_cpu_s']:.3f} | {r['optuna_vs_ours']:.1f}x | {r['same_decisions']} |"
        )
    flat = ", ".join(f"{k.replace('_cpu_s', '')} {v:.2f}x" for k, v in p["flat"].items())
    return [*lines, "", f"Largest / smallest study: {flat}."]


def _threads(t: dict) -> list[str]:
    if "skipped" in t:
        return []
    a, n = t["auto"][0], t["torch_default"][0]
    return [
        "",
        f"Threads under load ({t['trials']}-trial tiny sweep, {t['busy_processes']} busy-loop processes on "
        f"{t['cores']} cores; {t['note']}): trainer.threads=auto ({a['threads']} threads) "
        f"{t['auto_wall_seconds']:.0f}s vs torch's default ({n['threads']} threads) "
        f"{t['torch_default_wall_seconds']:.0f}s wall: torch's default takes {t['torch_default_vs_auto']:.2f}x.",
    ]
