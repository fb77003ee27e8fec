"""The bench's Hydra app: run the selected sections, write results.json and results.md."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from patchtst_hpo import cli
from patchtst_hpo.atomic import write_json, write_text
from patchtst_hpo.bench import sections
from patchtst_hpo.bench.gpu import gpu_section
from patchtst_hpo.bench.hf import hf_section
from patchtst_hpo.bench.loops import matmul_rate
from patchtst_hpo.bench.markdown import markdown
from patchtst_hpo.paths import CONF_DIR

OPTIONAL = ("hf", "data", "panel", "trial_overhead", "pruning", "threads", "param_accounting_2b")


def run(bcfg: DictConfig, out: Path) -> dict[str, Any]:
    data_dir = str(bcfg.data_dir)
    peak = matmul_rate(int(bcfg.matmul_n), int(bcfg.repeats)) / 1e9
    res: dict[str, Any] = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "mode": bcfg.mode,
            "repeats": int(bcfg.repeats),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "matmul_n": int(bcfg.matmul_n),
            "config": OmegaConf.to_container(bcfg, resolve=True),
        },
        "matmul_gflops": peak,
    }
    chosen = set(bcfg.sections)
    if "training" in chosen:
        res["training"] = sections.training_section(bcfg, peak, data_dir)
    if "hf" in chosen:
        res["hf"] = hf_section(bcfg, data_dir)
    if "data" in chosen:
        rates = {r["budget"]: r["plain_samples_per_s"] for r in res.get("training", [])}
        res["data"] = sections.data_section(
            bcfg, data_dir, rates.get(bcfg.hf_budget, min(rates.values(), default=1.0))
        )
    if "panel" in chosen:  # issue 14: a synthetic panel's build and loader against the 2M model's step rate
        from patchtst_hpo.bench.panel import panel_loader_rows

        p = bcfg.panel
        res["panel"] = panel_loader_rows(
            int(p.symbols), int(p.days), int(bcfg.batch_size), int(p.loader_batches), int(p.model_steps)
        )
    if "trial_overhead" in chosen:
        res["trial_overhead"] = sections.trial_overhead_section(bcfg, data_dir)
    if "transfer" in chosen:  # issue 23: lr transfer under mup, and a budget ladder searched with transfer
        from patchtst_hpo.bench.transfer import transfer_section

        res["transfer"] = transfer_section(bcfg, out)
    if "pruning" in chosen:  # issue 19: a job's pruning CPU per trial vs the study's size
        from patchtst_hpo.bench.pruning import pruning_section

        res["pruning"] = pruning_section(bcfg)
    if "threads" in chosen:  # issue 19: trainer.threads=auto vs torch's default under a competing load
        from patchtst_hpo.bench.threads import threads_section

        res["threads"] = threads_section(bcfg, data_dir)
    if "param_accounting" in chosen:
        res["param_accounting_2b"] = sections.param_accounting_section(bcfg)
    res["gpu"] = (
        gpu_section(bcfg, data_dir, out / "gpu_partial.json")
        if "gpu" in chosen
        else {"skipped": "not selected"}
    )
    res.setdefault("training", [])
    for key in OPTIONAL:
        res.setdefault(key, {"skipped": "not selected (bench.sections)"})
    write_json(out / "results.json", res)
    write_text(out / "results.md", markdown(res))
    print(markdown(res))
    return res


@hydra.main(config_path=str(CONF_DIR), config_name="bench", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(cfg, Path(HydraConfig.get().runtime.output_dir))


def console() -> None:
    """`patchtst-bench` and `python -m patchtst_hpo.bench`: config errors as one line (exit 2), then Hydra."""
    cli.install()
    main()


if __name__ == "__main__":
    console()
