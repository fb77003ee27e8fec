"""Width- and depth-aware parametrisation of PatchTST (µP; depth-µP), so tuned training hyperparameters transfer.

Under `parametrization=mup` (Yang et al. 2022, Tensor Programs V, Table 3 for Adam), with the width multiplier
`m = d_model / base_width`: hidden matrices (qkv, out projection, both FFN matmuls) start with std / sqrt(m) and
learn at lr / m; the input layer (patch embedding, positional embedding), norms and biases keep their init and
lr; the readout (head) keeps its init and lr but its output is multiplied by 1 / m; attention logits are scaled by
sqrt(base_d_head) / d_head (1 / d_head up to a constant) instead of 1 / sqrt(d_head). With `depth_scaling=sqrt`
(Yang et al. 2023, Tensor Programs VI; CompleteP with alpha = 1/2) each residual branch is multiplied by
sqrt(base_depth / n_layers), every parameter of the blocks learns at lr * sqrt(base_depth / n_layers), and the
residual projections' init no longer shrinks with depth. At base width and base depth both equal `standard`
exactly, so `optimizer.lr` always means "the lr of the base model". Why our own module: ADR 0004.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from patchtst_hpo.models.arch_grid import PatchTSTConfig

PARAMETRIZATIONS = ("standard", "mup")
DEPTH_SCALINGS = ("none", "sqrt")
INIT_STD = 0.02  # GPT-style init of every matrix at the base shape
HIDDEN = ("qkv.weight", "proj.weight", "ff1.weight", "ff2.weight")  # the width x width matrices of a block
WRAPPERS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")  # FSDP, compile prefixes


@dataclass(frozen=True)
class Scales:
    """The multipliers one model's parametrisation sets (all 1 / None under standard without depth scaling)."""

    width: float  # m = d_model / base_width: hidden lr / m, hidden init std / sqrt(m), readout output / m
    depth: float  # residual-branch multiplier and block lr factor: sqrt(base_depth / n_layers)
    attn: float | None  # softmax scale of the attention logits; None = 1 / sqrt(d_head) (torch's default)
    resid_depth: int  # the depth the residual projections' init is scaled for: 0.02 / sqrt(2 * resid_depth)


def check(cfg: PatchTSTConfig) -> None:
    """ValueError naming the field when the parametrisation fields do not make one."""
    if cfg.parametrization not in PARAMETRIZATIONS:
        raise ValueError(f"parametrization={cfg.parametrization!r}: use one of {PARAMETRIZATIONS}")
    if cfg.depth_scaling not in DEPTH_SCALINGS:
        raise ValueError(f"depth_scaling={cfg.depth_scaling!r}: use one of {DEPTH_SCALINGS}")
    if cfg.parametrization == "mup" and not (cfg.mup_base_width or 0) >= 1:
        raise ValueError(f"mup_base_width={cfg.mup_base_width!r}: parametrization=mup needs a width >= 1")
    if cfg.depth_scaling == "sqrt" and not (cfg.mup_base_depth or 0) >= 1:
        raise ValueError(f"mup_base_depth={cfg.mup_base_depth!r}: depth_scaling=sqrt needs a depth >= 1")


def scales(cfg: PatchTSTConfig) -> Scales:
    """The multipliers of this model config (see the module docstring for the rules)."""
    check(cfg)
    width, attn = 1.0, None
    if cfg.parametrization == "mup":
        width = cfg.d_model / cfg.mup_base_width
        base_d_head = cfg.mup_base_width / cfg.n_heads
        attn = math.sqrt(base_d_head) / (cfg.d_model // cfg.n_heads)
    depth, resid_depth = 1.0, max(cfg.n_layers, 1)
    if cfg.depth_scaling == "sqrt":
        depth, resid_depth = math.sqrt(cfg.mup_base_depth / max(cfg.n_layers, 1)), cfg.mup_base_depth
    return Scales(width=width, depth=depth, attn=attn, resid_depth=resid_depth)


def role(name: str, p: torch.Tensor) -> str:
    """`hidden` (a width x width matrix), `readout` (head.weight), `input` (patch and positional embeddings) or
    `vector` (norms, biases, RevIN). An unknown matrix is an error, so a new layer is never silently mis-scaled."""
    name = _plain(name)
    if "flat_param" in name:
        raise ValueError(f"parameter {name!r}: FSDP's flat parameters hide the layers; use use_orig_params")
    if name == "head.weight":
        return "readout"
    if name in ("patch_embed.weight", "pos_embed"):
        return "input"
    if p.dim() < 2:
        return "vector"
    if name.startswith("layers.") and name.endswith(HIDDEN):
        return "hidden"
    raise ValueError(f"parameter {name!r} ({tuple(p.shape)}) has no µP role: add it to models/mup.py role()")


def _plain(name: str) -> str:
    for prefix in WRAPPERS:
        name = name.replace(prefix, "")
    return name


def lr_multiplier(name: str, p: torch.Tensor, s: Scales) -> float:
    """The factor on `optimizer.lr` of one parameter: 1/m for hidden matrices, times the depth factor in blocks."""
    if s.width == 1.0 and s.depth == 1.0:
        return 1.0
    mult = 1.0 / s.width if role(name, p) == "hidden" else 1.0
    return mult * s.depth if _plain(name).startswith("layers.") else mult


def init_(model: torch.nn.Module, s: Scales) -> None:
    """GPT-style init (std 0.02, residual projections 0.02 / sqrt(2 L)), hidden matrices / sqrt(m) under mup."""
    from torch import nn

    resid_std = INIT_STD / (2 * s.resid_depth) ** 0.5
    for name, p in model.named_parameters():
        if p.dim() < 2 or "revin" in name:
            continue
        std = resid_std if name.endswith(("proj.weight", "ff2.weight")) else INIT_STD
        if s.width != 1.0 and role(name, p) == "hidden":
            std = std / s.width**0.5
        nn.init.normal_(p, std=std)
    for m in model.modules():
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


def param_groups(model: torch.nn.Module, s: Scales) -> list[dict]:
    """AdamW parameter groups: matrices decay, vectors and the positional embedding do not; each group carries
    `lr_mult` (applied by `apply_lr_multipliers`). Under plain standard these are the two groups of before."""
    groups: dict[tuple[bool, float], list] = {}
    for name, p in model.named_parameters():
        decay = p.dim() >= 2 and "pos_embed" not in name
        groups.setdefault((decay, lr_multiplier(name, p, s)), []).append(p)
    if s.width == 1.0 and s.depth == 1.0:  # one decay and one no-decay group, in that order, as always
        groups = {(True, 1.0): groups.get((True, 1.0), []), (False, 1.0): groups.get((False, 1.0), [])}
    ordered = sorted(groups.items(), key=lambda kv: (not kv[0][0], -kv[0][1]))
    return [
        {"params": ps, "lr_mult": mult, **({} if decay else {"weight_decay": 0.0})}
        for (decay, mult), ps in ordered
    ]


def apply_lr_multipliers(optimizer: torch.optim.Optimizer) -> None:
    """Scale each group's lr by its `lr_mult` once, before a scheduler records the groups' initial lrs."""
    for g in optimizer.param_groups:
        g["lr"] = g["lr"] * g.get("lr_mult", 1.0)
