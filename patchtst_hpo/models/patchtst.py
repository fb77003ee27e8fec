"""PatchTST for classification with channel-mixing patches.

Each patch of `patch_len` time steps of *all* features is one token (`Linear(patch_len * F -> d_model)`),
so the encoder mixes channels from the first layer on. Encoder layers are pre-norm and use
`F.scaled_dot_product_attention`, PyTorch's fused attention path (flash / memory-efficient kernels on
GPU, a fused kernel on CPU). `arch_grid.count_params` must mirror every parameter created here.
The parametrisation (standard or µP, optional depth scaling) sets init, multipliers and lrs: `mup.py`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from patchtst_hpo.models import mup
from patchtst_hpo.models.arch_grid import PatchTSTConfig  # the config (torch-free) lives with the grid


class RevIN(nn.Module):
    """Reversible instance normalisation: each window is normalised by its own per-feature mean/std."""

    def __init__(self, num_features: int, affine: bool, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, T, F]
        mean = x.mean(dim=1, keepdim=True)
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps)
        x = (x - mean) / std
        if self.weight is not None:
            x = x * self.weight + self.bias
        return x


class EncoderLayer(nn.Module):
    """Pre-norm transformer block: x + b * MHA(LN(x)), then x + b * FFN(LN(x)) (b = 1 unless depth-scaled)."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float,
        attn_dropout: float,
        branch_mult: float = 1.0,
        attn_scale: float | None = None,
    ):
        super().__init__()
        self.n_heads = n_heads
        self.attn_dropout = attn_dropout
        self.branch_mult, self.attn_scale = branch_mult, attn_scale  # mup.Scales.depth / .attn
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.n_heads, d // self.n_heads).unbind(2)
        a = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            dropout_p=self.attn_dropout if self.training else 0.0,
            scale=self.attn_scale,
        )
        x = x + self._branch(self.proj(a.transpose(1, 2).reshape(b, t, d)))
        # Dropout on the residual branches only (as nanoGPT): a dropout on the 4x-wide FFN hidden layer
        # cost more than the layer's matmuls on CPU (RNG for every element).
        return x + self._branch(self.ff2(F.gelu(self.ff1(self.norm2(x)))))

    def _branch(self, y: torch.Tensor) -> torch.Tensor:
        y = self.drop(y)
        return y if self.branch_mult == 1.0 else y * self.branch_mult  # standard: not one op more


class PatchTST(nn.Module):
    """`[batch, context_length, num_features]` -> logits `[batch, num_classes]` (1 = binary, use BCE)."""

    def __init__(self, cfg: PatchTSTConfig):
        super().__init__()
        if cfg.d_model % cfg.n_heads:
            raise ValueError(f"n_heads={cfg.n_heads} does not divide d_model={cfg.d_model}")
        if cfg.patch_len > cfg.context_length:
            raise ValueError(f"patch_len={cfg.patch_len} is longer than context_length={cfg.context_length}")
        self.cfg = cfg
        self.scales = mup.scales(cfg)
        self.revin = RevIN(cfg.num_features, cfg.revin_affine) if cfg.revin else None
        self.patch_embed = nn.Linear(cfg.patch_len * cfg.num_features, cfg.d_model)
        self.pos_embed = nn.Parameter(torch.empty(1, cfg.num_patches, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(
                cfg.d_model,
                cfg.n_heads,
                cfg.d_ff,
                cfg.dropout,
                cfg.attn_dropout,
                self.scales.depth,
                self.scales.attn,
            )
            for _ in range(cfg.n_layers)
        )
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head_drop = nn.Dropout(cfg.head_dropout)
        self.head = nn.Linear(cfg.d_model * cfg.num_patches, cfg.num_classes)
        if self.pos_embed.device.type != "meta":
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-style init: small normal weights, residual projections scaled down with depth (`mup.init_`)."""
        mup.init_(self, self.scales)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.revin is not None:
            x = self.revin(x)
        b = x.shape[0]
        # [B, T, F] -> [B, P, F, patch_len] -> [B, P, patch_len * F]: one token per patch of all channels.
        patches = x.unfold(1, self.cfg.patch_len, self.cfg.stride).reshape(b, self.cfg.num_patches, -1)
        h = self.drop(self.patch_embed(patches) + self.pos_embed)
        for layer in self.layers:
            h = layer(h)
        out = self.head(self.head_drop(self.norm(h).flatten(1)))
        return out if self.scales.width == 1.0 else out / self.scales.width  # µP readout multiplier 1 / m
