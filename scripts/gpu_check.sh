#!/usr/bin/env bash
# The GPU check of issue 11, in one call on a lent H100/H200 (see docs/performance.md):
#   1. the bench's GPU section (plain loop vs our path at 20M, 200M, 2B; MFU vs a same-run bf16 matmul);
#   2. a 200M single run, 1 epoch of the sample, process start to metrics.json;
#   3. a 2B single run, 1 epoch, process start to metrics.json (sweep checkpoint policy: best weights only);
#   4. a 4-trial 20M sweep (per-trial overhead from trial 2 on);
#   5. a 4-trial 200M sweep, 1 epoch each (per-trial overhead, disk per trial with the sweep defaults);
#   6. FSDP on 1 GPU (trainer=fsdp trainer.devices=1): 200M, 1 full epoch, norm clipping (FSDP's own
#      clip_grad_norm_): every training window seen once (the sampler flag), the applied gradients' norm;
#      2B, 3 steps, value clipping: max |grad| <= clip, and the per-rank memory estimate vs the measured peak;
#   (the sweeps search the architecture only, `search=none`: conf/search/default.yaml's CPU-sized batch
#   choices would replace the budget's GPU batch size);
# each under `timeout`, all inside GPU_CHECK_SECONDS (default 500 s), then one table.
#
# On the GPU machine, from the repo root (wheels from ../shared/gpu/fetch-wheels.sh in .whl/):
#   bash scripts/gpu_check.sh [OUT_DIR [OVERRIDE...]]   # logs and JSON in OUT_DIR (default
#                                                      # outputs/gpu_check/<time>); overrides go to every step
# Checkpoints are deleted at the end (their sizes are in metrics.json) unless GPU_CHECK_KEEP_CKPT=1.
# GPU_CHECK_CPU=1 runs tiny CPU versions of every step (the script's own test; figures are meaningless).
set -uo pipefail

OUT=${1:-outputs/gpu_check/$(date -u +%Y%m%d_%H%M%S)}
shift $(($# > 0 ? 1 : 0))
EXTRA=("$@")
PY=${PYTHON:-python3}
TOTAL=${GPU_CHECK_SECONDS:-500}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
START=$SECONDS

if ! "$PY" -c "import hydra, optuna" 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target .site .whl/*.whl
    export PYTHONPATH="$PWD/.site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="${PYTHONPATH:-$PWD}" PYTHONUNBUFFERED=1 HYDRA_FULL_ERROR=1

if [[ ${GPU_CHECK_CPU:-0} == 1 ]]; then
    B20=tiny B200=tiny B2B=tiny
    COMMON=(trainer=cpu trainer.limit_train_batches=2 trainer.limit_val_batches=1 trainer.limit_test_batches=1)
    BENCH=(bench=smoke "sections=[gpu]")
    FSDP=()   # FSDP cannot run on CPU (refused): the steps run on trainer=cpu, their plumbing only
    FULL_EPOCH=(trainer.limit_train_batches=null)
else
    B20=20M B200=200M B2B=2B
    COMMON=(trainer=gpu)
    BENCH=(bench=gpu)
    FSDP=(trainer=fsdp trainer.devices=1)
    FULL_EPOCH=()
fi
COMMON+=(callbacks.progress.refresh_seconds=0 "${EXTRA[@]}")
BENCH+=("${EXTRA[@]}")

# step NAME LIMIT CMD...: run CMD under `timeout` (LIMIT, or what is left of TOTAL), log to OUT/NAME.log,
# record wall seconds and exit status in OUT/NAME.status.
step() {
    local name=$1 limit=$2
    shift 2
    local left=$((TOTAL - (SECONDS - START)))
    ((limit > left)) && limit=$left
    if ((limit < 10)); then
        echo "skipped 0 no-time" >"$OUT/$name.status"
        return
    fi
    echo "[$(date -u +%T)] $name (limit ${limit}s): $*" >&2
    local t0 ms rc
    t0=$(date +%s%N)
    timeout --signal=TERM --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    printf 'done %d.%03d %d\n' $((ms / 1000)) $((ms % 1000)) "$rc" >"$OUT/$name.status"
}

step bench 240 "$PY" -m patchtst_hpo.bench "${BENCH[@]}" "hydra.run.dir=$OUT/bench"
step run200M 90 "$PY" -m patchtst_hpo.train "budget=$B200" "${COMMON[@]}" trainer.max_epochs=1 \
    "hydra.run.dir=$OUT/run200M"
step run2B 120 "$PY" -m patchtst_hpo.train "budget=$B2B" "${COMMON[@]}" trainer.max_epochs=1 \
    callbacks.model_checkpoint.save_weights_only=true callbacks.model_checkpoint.save_last=false \
    "hydra.run.dir=$OUT/run2B"
PROBE=(+callbacks.grad_probe._target_=tests.rank_probes.GradProbe test=false callbacks.model_checkpoint=null)
step fsdp200M 120 "$PY" -m patchtst_hpo.train "budget=$B200" "${COMMON[@]}" "${FSDP[@]}" "${FULL_EPOCH[@]}" \
    trainer.max_epochs=1 trainer.gradient_clip_algorithm=norm trainer.gradient_clip_val=0.5 "${PROBE[@]}" \
    "+callbacks.grad_probe.folder=$OUT/fsdp200M/probe" "hydra.run.dir=$OUT/fsdp200M"
step fsdp2B 120 "$PY" -m patchtst_hpo.train "budget=$B2B" "${COMMON[@]}" "${FSDP[@]}" trainer.max_epochs=1 \
    trainer.limit_train_batches=3 trainer.gradient_clip_algorithm=value trainer.gradient_clip_val=0.01 "${PROBE[@]}" \
    "+callbacks.grad_probe.folder=$OUT/fsdp2B/probe" "hydra.run.dir=$OUT/fsdp2B"
for b in "$B20:sweep20M:3" "$B200:sweep200M:1"; do
    IFS=: read -r budget name epochs <<<"$b"
    step "$name" 120 "$PY" -m patchtst_hpo.train -m "budget=$budget" "${COMMON[@]}" "trainer.max_epochs=$epochs" \
        search=none hydra.sweeper.n_trials=4 "hydra.sweeper.storage=sqlite:///$OUT/$name.db" hydra.sweeper.study_name=gc \
        "hydra.sweep.dir=$OUT/$name"
done

"$PY" - "$OUT" <<'EOF'
"""One table from the step logs and JSON files (a step that failed or ran out of time says so)."""
import datetime as dt
import json
import statistics
import sys
from pathlib import Path

out = Path(sys.argv[1])


def status(name):
    f = out / f"{name}.status"
    if not f.exists():
        return "not run"
    state, secs, rc = f.read_text().split()
    if state == "skipped":
        return "skipped: out of time"
    return "ok" if rc == "0" else ("timed out" if rc in ("124", "137") else f"failed (exit {rc})")


def load(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def sweep(name):
    """Per trial (by number): sweeper-side wall, fit_seconds and checkpoint bytes, from Optuna and metrics.json."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=None, storage=f"sqlite:///{out / name}.db")
    except Exception:  # noqa: BLE001  (no study: the step failed before creating one)
        return []
    rows = []
    for t in sorted(study.trials, key=lambda t: t.number):
        m = load(Path(t.user_attrs.get("run_dir", "/nonexistent")) / "metrics.json")
        if m and t.datetime_complete:
            wall = (t.datetime_complete - t.datetime_start).total_seconds()
            rows.append({"wall": wall, "overhead": wall - m["fit_seconds"], "bytes": m["checkpoint_bytes"]})
    return rows


def wall(name):
    f = out / f"{name}.status"
    return float(f.read_text().split()[1]) if f.exists() else None


bench = load(out / "bench" / "results.json")
gpu = (bench or {}).get("gpu") or load(out / "bench" / "gpu_partial.json") or {}
rows = {r["budget"]: r for r in gpu.get("rows", [])}
b200 = rows.get("200M") or next(iter(rows.values()), {})
import torch  # noqa: E402

figures = []


def add(name, value, target=""):
    figures.append((name, value, target))


fmt = lambda v, f: "n/a" if v is None else format(v, f)  # noqa: E731
add("bench GPU section", status("bench"))
add("bf16 matmul peak TFLOP/s (same run)", fmt(gpu.get("matmul_tflops_bf16"), ".0f"))
for tag in ("eager", "compiled"):
    if f"ours_{tag}" in b200:
        o = b200[f"ours_{tag}"]
        add(f"200M ours/plain, bf16 steady state, {tag}, batch {b200['batch_size']}",
            fmt(b200[f"ours_vs_plain_{tag}"], ".1%"), ">= 90%")
        add(f"200M MFU (our path, {tag})", f"{o['mfu']:.1%} ({o['tflops']:.0f} TFLOP/s)", ">= 45%")
        add(f"200M set-up to first step in-process, {tag} s", fmt(o["setup_to_first_step_seconds"], ".1f"))
for b in ("20M", "2B"):
    if b in rows and "ours_eager" in rows[b]:
        add(f"{b} ours/plain eager; MFU", f"{rows[b]['ours_vs_plain_eager']:.1%}; {rows[b]['ours_eager']['mfu']:.1%}")
for name, label, target in (("run200M", "200M", ""), ("run2B", "2B", "< 60 s")):
    m = load(out / name / "metrics.json")
    add(f"{label} 1 epoch: process start to metrics.json s ({status(name)})", fmt(wall(name), ".1f"), target)
    if m:
        add(f"{label} 1 epoch: start-up to first step s; fit s; steps",
            f"{m.get('startup_seconds')}; {m['fit_seconds']}; {m['steps']}")
m, probe = load(out / "fsdp200M" / "metrics.json"), load(out / "fsdp200M" / "probe" / "rank0.json")
if m:
    train_windows = m["data"]["splits"]["train"]["samples"]
    add(f"FSDP 1 GPU 200M, 1 epoch ({status('fsdp200M')}): samples seen / training windows",
        f"{m['samples_seen']:,} / {train_windows:,}", "equal")
if probe:
    add("FSDP 200M norm clipping at 0.5: max total grad norm applied", f"{max(s['norm'] for s in probe):.4f}", "<= 0.5")
m, probe = load(out / "fsdp2B" / "metrics.json"), load(out / "fsdp2B" / "probe" / "rank0.json")
if probe:
    add(f"FSDP 2B value clipping at 0.01 ({status('fsdp2B')}): max abs(grad) applied",
        f"{max(s['max_abs'] for s in probe):.4g}", "<= 0.01")
if m and m.get("device_bytes"):
    est, peak = m["device_bytes"]["estimated"], m["device_bytes"]["peak"]
    add("FSDP 2B per-rank memory: estimate (devices.py) vs measured peak allocated, GiB",
        f"{est / 2**30:.1f} vs {'n/a' if peak is None else format(peak / 2**30, '.1f')}", "estimate >= peak")
for name, label in (("sweep20M", "20M"), ("sweep200M", "200M")):
    trials = sweep(name)
    later = [t["overhead"] for t in trials[1:]]
    add(f"{label} sweep: per-trial overhead from trial 2 on, median s ({status(name)}, {len(trials)} trials)",
        fmt(statistics.median(later) if later else None, ".2f"), "<= 2 s" if label == "20M" else "")
    if label == "200M" and trials:
        add("200M sweep: checkpoint bytes per trial (median, sweep defaults)",
            f"{statistics.median(t['bytes'] for t in trials) / 2**20:,.1f} MiB")

card = gpu.get("device") or (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device")
print(f"\n# GPU check {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC: {card}, torch {torch.__version__}\n")
print("| figure | value | target |\n|---|---|---|")
for name, value, target in figures:
    print(f"| {name} | {value} | {target} |")
with open(out / "table.md", "w") as f:
    f.write(f"GPU check: {card}, torch {torch.__version__}\n\n| figure | value | target |\n|---|---|---|\n")
    f.writelines(f"| {n} | {v} | {t} |\n" for n, v, t in figures)
EOF
# Checkpoints (GBs at 200M/2B) are measured in metrics.json (checkpoint_bytes); keep them only when asked.
[[ ${GPU_CHECK_KEEP_CKPT:-0} == 1 ]] || find "$OUT" -name '*.ckpt' -delete
echo "logs and JSON: $OUT (total $((SECONDS - START)) s)"
