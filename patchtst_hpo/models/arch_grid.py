"""The architecture grid: exact parameter counts, budget filtering and the extremes each study tries first.

Counts come from a closed formula that mirrors `patchtst.PatchTST` parameter by parameter (checked against
models built on the `meta` device, which allocates nothing). They depend on the data dims, so every
caller passes the dims of the composed config (`dims_from_cfg`), never hard-coded ones.

`Arch` and `Dims` are the two halves of a model's shape; `PatchTSTConfig` extends both (one definition
of every field and of `num_patches`) and is what `patchtst.PatchTST` is built from. This module imports no torch and no Hydra app code: the
candidates CLI (`python -m patchtst_hpo.candidates`) sits on top of it.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from omegaconf import DictConfig

from patchtst_hpo.errors import ConfigError


@dataclass(frozen=True)
class Dims:
    """The data-dependent part of a model's shape."""

    num_features: int
    context_length: int
    patch_len: int
    stride: int
    num_classes: int
    revin: bool = False
    revin_affine: bool = True

    @property
    def num_patches(self) -> int:
        return (self.context_length - self.patch_len) // self.stride + 1


_NAME = re.compile(r"d(\d+)_l(\d+)_h(\d+)_f(\d+)")


@dataclass(frozen=True, order=True)
class Arch:
    """One point of the grid; `name` (e.g. `d256_l4_h8_f1024`) is its key in the `arch` config group."""

    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int

    @property
    def name(self) -> str:
        return f"d{self.d_model}_l{self.n_layers}_h{self.n_heads}_f{self.d_ff}"

    @classmethod
    def from_name(cls, name: str) -> Arch:
        """The inverse of `name` (e.g. for a study's `arch` parameter)."""
        m = _NAME.fullmatch(name)
        if not m:
            raise ConfigError(f"arch name {name!r} is not d<d_model>_l<layers>_h<heads>_f<d_ff>")
        return cls(*(int(g) for g in m.groups()))

    def check(self) -> None:
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"arch {self.name}: n_heads={self.n_heads} does not divide d_model={self.d_model}; "
                f"pick n_heads from the divisors of {self.d_model}"
            )


@dataclass(frozen=True)
class PatchTSTConfig(Dims, Arch):
    """Everything that fixes a PatchTST classifier: its grid point (`Arch`), the data dims (`Dims`, which
    owns `num_patches`), the dropouts and the parametrisation (`mup.py`; it changes no count and no FLOP).
    Being both, it can be passed to `count_params` as is.
    Defined here, not beside the torch model, so the grid and every config check stay torch-free."""

    dropout: float = 0.0
    attn_dropout: float = 0.0
    head_dropout: float = 0.0
    parametrization: str = "standard"  # standard | mup
    mup_base_width: int | None = None  # the d_model at which mup equals standard
    depth_scaling: str = "none"  # none | sqrt
    mup_base_depth: int | None = None  # the n_layers at which depth_scaling=sqrt equals none


@dataclass(frozen=True)
class Candidate:
    arch: Arch
    params: int
    target: int

    @property
    def deviation(self) -> float:
        return self.params / self.target - 1.0


def count_params(arch: Arch, dims: Dims) -> int:
    """Exact number of parameters of `PatchTST` for this arch and data dims."""
    d, f, p = arch.d_model, arch.d_ff, dims.num_patches
    patch_embed = dims.patch_len * dims.num_features * d + d
    pos_embed = p * d
    # qkv (3d^2 + 3d) + out proj (d^2 + d) + ffn (d*f + f + f*d + d) + 2 LayerNorms (4d)
    layer = 4 * d * d + 2 * d * f + 9 * d + f
    final_norm = 2 * d
    head = d * p * dims.num_classes + dims.num_classes
    revin = 2 * dims.num_features if dims.revin and dims.revin_affine else 0
    return patch_embed + pos_embed + arch.n_layers * layer + final_norm + head + revin


def forward_flops(arch: Arch, dims: Dims) -> int:
    """Matmul FLOPs of one sample's forward pass of `PatchTST`.

    Convention: a matmul of [m, k] x [k, n] costs 2*m*n*k FLOPs (one multiply and one add per term). Counted:
    patch embedding, qkv, output projection, both FFN matmuls, attention scores (Q K^T) and values (A V),
    and the head. Not counted: biases, norms, softmax, GELU, dropout, the optimizer (elementwise work), so an
    MFU of 100% is out of reach. Mirrors `patchtst.PatchTST.forward` as `count_params` mirrors its parameters.
    """
    p, d, f = dims.num_patches, arch.d_model, arch.d_ff
    embed = 2 * p * (dims.patch_len * dims.num_features) * d
    qkv, proj, ffn = 2 * p * d * 3 * d, 2 * p * d * d, 2 * (2 * p * d * f)
    attention = 2 * (2 * p * p * d)  # scores [p, d/h] x [d/h, p] and values [p, p] x [p, d/h], over h heads
    head = 2 * (d * p) * dims.num_classes
    return embed + arch.n_layers * (qkv + proj + ffn + attention) + head


def train_flops(arch: Arch, dims: Dims, samples: int) -> int:
    """Matmul FLOPs of training on `samples` samples: 3x forward (backward = grads of inputs + of weights)."""
    return 3 * forward_flops(arch, dims) * int(samples)


def generate(space: DictConfig | dict) -> list[Arch]:
    """Every grid point; combinations whose n_heads does not divide d_model are not architectures."""
    return sorted(
        Arch(d, n_layers, h, d * r)
        for d, n_layers, h, r in itertools.product(
            space["d_model"], space["n_layers"], space["n_heads"], space["d_ff_ratio"]
        )
        if d % h == 0
    )


def nearest(archs: Sequence[Arch], dims: Dims, target: int, k: int = 3) -> list[Candidate]:
    """The k architectures whose counts are closest to `target` (on a log scale)."""
    ranked = sorted(archs, key=lambda a: (abs(math.log(count_params(a, dims) / target)), a))
    return [Candidate(a, count_params(a, dims), target) for a in ranked[:k]]


def candidates(space: DictConfig | dict, budget: DictConfig | dict, dims: Dims) -> list[Candidate]:
    """Grid points within `target * (1 ± tolerance)`, sorted by parameter count then name."""
    target, tol = int(budget["target"]), float(budget["tolerance"])
    archs = generate(space)
    found = [
        Candidate(a, n, target) for a in archs if abs((n := count_params(a, dims)) / target - 1.0) <= tol
    ]
    if not found:
        near = ", ".join(f"{c.arch.name} ({c.params:,})" for c in nearest(archs, dims, target))
        raise ConfigError(
            f"budget {budget.get('name', target)} ({target:,} ± {tol:.0%}) has no architecture in the grid "
            f"for {dims}; nearest: {near}. Widen budget.tolerance or extend the grid (conf/grid/)."
        )
    return sorted(found, key=lambda c: (c.params, c.arch))


def extremes(cands: Sequence[Candidate]) -> list[Candidate]:
    """Min/max d_model and min/max n_layers among candidates (each the one closest to target), deduplicated.

    Enqueued first in every study so the search sees the shape extremes of its budget.
    """
    out: list[Candidate] = []
    for key, pick in (
        (lambda c: c.arch.d_model, min),
        (lambda c: c.arch.d_model, max),
        (lambda c: c.arch.n_layers, min),
        (lambda c: c.arch.n_layers, max),
    ):
        edge = pick(key(c) for c in cands)
        best = min((c for c in cands if key(c) == edge), key=lambda c: (abs(c.deviation), c.arch))
        if best not in out:
            out.append(best)
    return out


def model_config(arch: Arch, dims: Dims, **model: float | int | str | None) -> PatchTSTConfig:
    """The PatchTST config of one grid point for these data dims (dropouts, parametrisation: the model's)."""
    return PatchTSTConfig(**vars(arch), **vars(dims), **model)


def dims_from_cfg(cfg: DictConfig) -> Dims:
    """The data dims of a composed config (data, task and model groups)."""
    return Dims(
        num_features=int(cfg.data.num_features),
        context_length=int(cfg.data.context_length),
        patch_len=int(cfg.model.patch_len),
        stride=int(cfg.model.stride),
        num_classes=int(cfg.task.num_classes),
        revin=bool(cfg.model.revin),
        revin_affine=bool(cfg.model.revin_affine),
    )


def arch_from_cfg(cfg: DictConfig) -> Arch:
    a = cfg.arch
    arch = Arch(int(a.d_model), int(a.n_layers), int(a.n_heads), int(a.d_ff))
    arch.check()
    return arch


def budget_candidates(cfg: DictConfig) -> list[Candidate]:
    """Candidates of the composed config's budget for its grid and data."""
    return candidates(cfg.grid, cfg.budget, dims_from_cfg(cfg))
