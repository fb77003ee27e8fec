"""Device memory: what a run needs and what its device has, checked before anything is allocated.

Need = training state (bytes per parameter for the precision, `STATE_BYTES_PER_PARAM`) + activations kept for
the backward pass (`activation_bytes_per_sample` x batch size) + a fixed allowance (`RESERVED_BYTES`: CUDA
context, cuBLAS workspaces, allocator fragmentation). The activation figure is an estimate, documented below
and in docs/performance.md; the state figure is exact for AdamW.
"""

from __future__ import annotations

import logging

import torch
from omegaconf import DictConfig, OmegaConf

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.models.arch_grid import Arch, Dims, arch_from_cfg, count_params, dims_from_cfg

# weights + gradients + AdamW's two moments (+ the half-precision weight copy autocast makes in forward).
STATE_BYTES_PER_PARAM = {
    "32-true": 4 + 4 + 8,
    "32": 4 + 4 + 8,
    "bf16-mixed": 4 + 4 + 8 + 2,
    "16-mixed": 4 + 4 + 8 + 2,
    "bf16-true": 2 + 2 + 4,
    "16-true": 2 + 2 + 4,
    "64-true": 8 + 8 + 16,
    "64": 8 + 8 + 16,
}
TRAIN_BYTES_PER_PARAM = STATE_BYTES_PER_PARAM["32-true"]
# Bytes per saved activation element: (residual stream and LayerNorms, matmul outputs). Under *-mixed autocast
# layer_norm runs in fp32 while matmuls write half precision.
ACTIVATION_BYTES = {
    "32-true": (4, 4),
    "32": (4, 4),
    "bf16-mixed": (4, 2),
    "16-mixed": (4, 2),
    "bf16-true": (2, 2),
    "16-true": (2, 2),
    "64-true": (8, 8),
    "64": (8, 8),
}
RESERVED_BYTES = 2**30
log = logging.getLogger(__name__)


def _precision(precision: str) -> str:
    p = str(precision)
    if p not in STATE_BYTES_PER_PARAM:
        raise ConfigError(
            f"trainer.precision={p!r}: the memory check knows {sorted(STATE_BYTES_PER_PARAM)}; use one of them"
        )
    return p


def activation_bytes_per_sample(arch: Arch, dims: Dims, precision: str) -> int:
    """Activations one training sample keeps for backward (estimate, an upper bound for flash attention).

    Per encoder layer, with P tokens (patches), width d, FFN width f and h heads:
    - stream (fp32 under autocast): LN1 input and output, LN2 input and output: 4*P*d;
    - matmul outputs (half under autocast): qkv 3*P*d, attention output P*d, projection P*d, FFN hidden
      and its GELU 2*P*f, FFN output P*d: 6*P*d + 2*P*f;
    - attention scores and probabilities h*P^2 each: 2*h*P^2 (the math SDPA kernel keeps both; flash keeps
      only a log-sum-exp per row, so this over-counts there).
    Plus the patches (P*patch_len*F), embedding output, final norm and head input (3*P*d) on the stream.
    """
    stream_b, matmul_b = ACTIVATION_BYTES[_precision(precision)]
    p, d, f, h = dims.num_patches, arch.d_model, arch.d_ff, arch.n_heads
    stream = arch.n_layers * 4 * p * d + 3 * p * d + p * dims.patch_len * dims.num_features
    matmul = arch.n_layers * (6 * p * d + 2 * p * f + 2 * h * p * p)
    return stream * stream_b + matmul * matmul_b


def training_bytes(arch: Arch, dims: Dims, batch: int, precision: str) -> int:
    """Bytes one training step needs on its device: state + batch x activations + `RESERVED_BYTES`."""
    state = count_params(arch, dims) * STATE_BYTES_PER_PARAM[_precision(precision)]
    return state + int(batch) * activation_bytes_per_sample(arch, dims, precision) + RESERVED_BYTES


def layer_params(arch: Arch) -> int:
    """Parameters of one encoder layer (qkv, projection, FFN, 2 LayerNorms), as in `count_params`."""
    d, f = arch.d_model, arch.d_ff
    return 4 * d * d + 2 * d * f + 9 * d + f


def fsdp_training_bytes(arch: Arch, dims: Dims, batch: int, precision: str, world: int) -> dict[str, int]:
    """Bytes one rank needs under FSDP FULL_SHARD over `world` ranks, one unit per encoder layer (trainer=fsdp).

    - sharded: 1/world of the weights, gradients and AdamW moments in full precision (FSDP keeps fp32 shards
      under *-mixed: the state bytes without the autocast copy);
    - gathered: what is unsharded at a time, in the compute dtype: the root unit (embedding, final norm, head)
      for the whole step, and two encoder layers (the current one and the one prefetched in backward), each
      weights plus its gradient before the reduce-scatter;
    - activations of this rank's batch (not sharded) and `RESERVED_BYTES`.
    """
    p = _precision(precision)
    total, layer = count_params(arch, dims), layer_params(arch)
    root = total - arch.n_layers * layer
    state = STATE_BYTES_PER_PARAM[p] - (2 if "mixed" in p else 0)
    parts = {
        "sharded": -(-total * state // int(world)),
        "gathered": 2 * (root + 2 * layer) * ACTIVATION_BYTES[p][1],
        "activations": int(batch) * activation_bytes_per_sample(arch, dims, p),
        "reserved": RESERVED_BYTES,
    }
    return {**parts, "total": sum(parts.values())}


def local_world(cfg: DictConfig) -> int:
    """Training processes on one node: trainer.devices resolved as Lightning does (auto / -1: every device)."""
    t = cfg.trainer
    devices = t.get("devices", "auto")
    if OmegaConf.is_list(devices) or isinstance(devices, list | tuple):
        return len(devices)
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        devices = int(devices)
    if isinstance(devices, int) and devices > 0:
        return devices
    if str(t.get("accelerator", "auto")) == "cpu":
        return 1  # Lightning's CPU accelerator counts one device for auto / -1
    return max(torch.cuda.device_count(), 1)


def world_size(cfg: DictConfig) -> int:
    """Training processes of the run: devices per node x trainer.num_nodes."""
    return local_world(cfg) * int(cfg.trainer.get("num_nodes", 1) or 1)


def fits(need: int, have: int | None) -> bool:
    """True when `need` bytes fit in `have` free bytes (None: the device cannot say, so we do not refuse)."""
    return have is None or need <= have


def available_bytes(accelerator: str) -> int | None:
    """Free memory of the device a run will train on (None where it cannot be read)."""
    if accelerator in ("gpu", "cuda") and torch.cuda.is_available():
        return torch.cuda.mem_get_info()[0]
    if accelerator == "cpu":
        try:
            with open("/proc/meminfo") as f:
                info = dict(line.split(":", 1) for line in f)
            return int(info["MemAvailable"].split()[0]) * 1024
        except (OSError, KeyError, ValueError):
            return None
    return None


def sharded(cfg: DictConfig) -> bool:
    """The run shards its training state across ranks (trainer=fsdp)."""
    strategy = cfg.trainer.get("strategy")
    return strategy is not None and "FSDP" in str(strategy)


def need_bytes(cfg: DictConfig) -> int:
    """The estimated device bytes one process (rank) of this run needs for a training step."""
    arch, dims = arch_from_cfg(cfg), dims_from_cfg(cfg)
    precision, batch = str(cfg.trainer.precision), int(cfg.data.batch_size)
    if sharded(cfg):
        return fsdp_training_bytes(arch, dims, batch, precision, world_size(cfg))["total"]
    return training_bytes(arch, dims, batch, precision)


def peak_bytes() -> int | None:
    """The most device memory this process has had allocated (CUDA only; None elsewhere)."""
    return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None


def check_memory(cfg: DictConfig, params: int | None = None) -> None:
    """Refuse, before allocating, a model whose training step cannot fit (instead of an OOM kill)."""
    arch, dims = arch_from_cfg(cfg), dims_from_cfg(cfg)
    precision, batch = str(cfg.trainer.precision), int(cfg.data.batch_size)
    have = available_bytes(str(cfg.trainer.accelerator))
    need = need_bytes(cfg)
    if sharded(cfg):  # across the ranks: each holds a fraction
        world = world_size(cfg)
        if not fits(need, have):
            raise ConfigError(
                f"budget={cfg.budget.name} arch={cfg.arch.name} needs about {need / 2**30:.1f} GiB per rank under "
                f"FSDP over {world} ranks at trainer.precision={precision} and data.batch_size={batch}, but "
                f"the device has {have / 2**30:.1f} GiB free; use more GPUs (trainer.devices, trainer.num_nodes) "
                f"or a smaller data.batch_size"
            )
        return
    if not fits(need, have):
        params = params if params is not None else count_params(arch, dims)
        state = STATE_BYTES_PER_PARAM[precision]
        raise ConfigError(
            f"budget={cfg.budget.name} arch={cfg.arch.name} needs about {need / 2**30:.1f} GiB: "
            f"{state} bytes x {params:,} parameters for weights, gradients and AdamW state at "
            f"trainer.precision={precision}, plus activations for data.batch_size={batch}; but "
            f"trainer.accelerator={cfg.trainer.accelerator} has {have / 2**30:.1f} GiB free; use trainer=gpu "
            f"on a larger device, trainer=fsdp across GPUs or a smaller data.batch_size"
        )


def data_to_device(datasets: dict, device: torch.device, max_fraction: float = 0.25) -> bool:
    """Move the datasets' tensors (windows source, labels, anchors) to an accelerator once, when they fit.

    Batches are then gathered on the device and the per-step host-to-device copy disappears. Works on any
    object whose tensors are plain attributes (WindowDataset); a tensor shared by several splits moves once.
    Returns whether the data moved (never on CPU; not when it would take over `max_fraction` of free memory).
    """
    device = torch.device(device)
    if device.type == "cpu":
        return False
    tensors = {id(v): v for ds in datasets.values() for v in vars(ds).values() if isinstance(v, torch.Tensor)}
    need = sum(t.numel() * t.element_size() for t in tensors.values())
    have = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
    if have is not None and need > max_fraction * have:
        log.info(
            "data stays on the host: %.1f GiB is over %.0f%% of free device memory",
            need / 2**30,
            100 * max_fraction,
        )
        return False
    moved = {k: t.to(device) for k, t in tensors.items()}
    for ds in datasets.values():
        for name, v in list(vars(ds).items()):
            if isinstance(v, torch.Tensor):
                setattr(ds, name, moved[id(v)])
    log.info("data on %s: %.1f MiB moved once", device, need / 2**20)
    return True
