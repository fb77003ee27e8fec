"""Bench section `hf`: transformers' PatchTSTForClassification at a matched parameter count vs our model."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable

import torch
from omegaconf import DictConfig

from patchtst_hpo.bench.loops import plain_step, timed_loop
from patchtst_hpo.bench.sections import datamodule
from patchtst_hpo.config import compose
from patchtst_hpo.models.arch_grid import arch_from_cfg, count_params, dims_from_cfg


def hf_section(bcfg: DictConfig, data_dir: str) -> dict:
    """transformers' PatchTSTForClassification at a matched parameter count vs our model (plain loops).

    Both rates come from `timed_loop` over the same batches with the same warm-up, so each counts exactly
    the batches it times (`hf_timed_batches` = `ours_timed_batches` = `hf_steps`).
    """
    try:
        from transformers import PatchTSTConfig as HFConfig
        from transformers import PatchTSTForClassification
    except ImportError:
        return {"skipped": "transformers is not installed (pip install -e '.[bench]')"}
    cfg = compose(
        "train",
        [f"budget={bcfg.hf_budget}", f"data.batch_size={bcfg.batch_size}", f"paths.data_dir={data_dir}"],
    )
    dims, ours = dims_from_cfg(cfg), cfg.arch

    def hf_model(layers: int):
        c = HFConfig(
            num_input_channels=dims.num_features,
            context_length=dims.context_length,
            patch_length=dims.patch_len,
            patch_stride=dims.stride,
            d_model=ours.d_model,
            num_attention_heads=ours.n_heads,
            num_hidden_layers=layers,
            ffn_dim=ours.d_ff,
            num_targets=2,
            dropout=0.1,
            use_cls_token=False,
            pooling_type="mean",
        )
        return PatchTSTForClassification(c)

    target = count_params(arch_from_cfg(cfg), dims)
    best = min(
        range(1, 4 * ours.n_layers + 1),
        key=lambda n: abs(sum(p.numel() for p in hf_model(n).parameters()) - target),
    )
    warmup = 1  # HF's step is ~40x slower: few steps, few repeats keep `make bench` under 10 minutes
    batches = list(itertools.islice(datamodule(cfg).train_dataloader(), warmup + int(bcfg.hf_steps)))

    def hf_step() -> Callable:
        torch.manual_seed(0)
        model = hf_model(best).train()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4)

        def step(x, y):
            loss = model(past_values=x, target_values=y.long()).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    repeats = int(bcfg.hf_repeats)
    hf = [timed_loop(batches, hf_step(), warmup) for _ in range(repeats)]
    ours_t = [timed_loop(batches, plain_step(cfg), warmup) for _ in range(repeats)]
    hf_rate, ours_rate = statistics.median(t.rate for t in hf), statistics.median(t.rate for t in ours_t)
    return {
        "budget": bcfg.hf_budget,
        "ours_arch": ours.name,
        "ours_params": target,
        "hf_params": sum(p.numel() for p in hf_model(best).parameters()),
        "hf_layers": best,
        "hf_samples_per_s": hf_rate,
        "ours_samples_per_s": ours_rate,
        "ours_vs_hf": ours_rate / hf_rate,
        "hf_timed_batches": hf[0].batches,
        "ours_timed_batches": ours_t[0].batches,
        "note": "HF PatchTST is channel-independent: num_features x more tokens per sample",
    }
