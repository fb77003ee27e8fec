"""Timed training loops: a plain PyTorch loop, our Lightning path, and the machine's matmul rate.

Every rate counts exactly the batches it times (`timed_loop`): the first `warmup` batches run untimed and
uncounted, the rest are both timed and counted.
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from patchtst_hpo.build import model_config
from patchtst_hpo.models.arch_grid import arch_from_cfg, dims_from_cfg
from patchtst_hpo.models.lit_module import warmup_cosine
from patchtst_hpo.models.patchtst import PatchTST


@dataclass(frozen=True)
class Timing:
    """What a timed loop measured: the batches and samples it counted, and the seconds they took."""

    batches: int
    samples: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.samples / self.seconds


def timed_loop(
    batches: Iterable, step: Callable, warmup: int, sync: Callable[[], None] = lambda: None
) -> Timing:
    """Run `step(x, y)` over `batches`; time and count the batches from index `warmup` on (the same ones).

    `sync` waits for queued device work (torch.cuda.synchronize on a GPU) at both ends of the timed span.
    """
    n, samples, t0 = 0, 0, None
    for i, (x, y) in enumerate(batches):
        if i == warmup:
            sync()
            t0 = time.perf_counter()
        step(x, y)
        if i >= warmup:
            n, samples = n + 1, samples + len(y)
    if t0 is None:
        raise ValueError(f"{warmup} warm-up batches left none to time: give more batches or fewer warm-ups")
    sync()
    return Timing(n, samples, time.perf_counter() - t0)


def cycle(loader_fn: Callable[[], Iterable], n: int) -> Iterable:
    """The first `n` batches of a loader, starting a new epoch (a fresh iterator) whenever one runs out."""
    return itertools.islice(itertools.chain.from_iterable(loader_fn() for _ in itertools.count()), n)


def plain_step(cfg: DictConfig, device: str = "cpu", compiled: bool = False) -> Callable:
    """One hand-written training step: forward (bf16 autocast if the trainer's precision is bf16-mixed), BCE,
    backward, clip to norm 1, the configured AdamW, warmup-cosine schedule."""
    torch.manual_seed(0)
    with torch.device(device):
        model = PatchTST(model_config(cfg, arch_from_cfg(cfg), dims_from_cfg(cfg)))
    forward = torch.compile(model) if compiled else model
    opt = instantiate(cfg.optimizer)(model.parameters())
    sched = warmup_cosine(opt, 1000, 0.05, 0.1)
    params = list(model.parameters())
    bf16 = str(cfg.trainer.precision) == "bf16-mixed"  # the same precision as the trainer config
    autocast = torch.autocast(torch.device(device).type, dtype=torch.bfloat16) if bf16 else nullcontext()
    model.train()

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with autocast:
            logits = forward(x).squeeze(-1).float()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()

    return step


def plain_loop(cfg: DictConfig, batches: Iterable, warmup: int) -> float:
    """samples/s of the plain loop on CPU over any iterable of (x, y)."""
    return timed_loop(batches, plain_step(cfg), warmup).rate


class StepTimer(L.Callback):
    """Times our path from global step `warmup` to the last step, and when the first step began."""

    def __init__(self, warmup: int, sync: Callable[[], None] | None = None):
        self.warmup, self.sync = warmup, sync
        self.first_step_at = self.t0 = self.t1 = 0.0
        self.batches = self.samples = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == 0 and not self.first_step_at:
            self.first_step_at = time.perf_counter()
        if trainer.global_step == self.warmup:
            if self.sync:
                self.sync()
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step > self.warmup:  # global_step counts the step that just finished
            self.batches, self.samples = self.batches + 1, self.samples + len(batch[1])
            self.t1 = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        if self.sync:  # once, after the last step: queued device work is part of the timed span
            self.sync()
            self.t1 = time.perf_counter()

    def timing(self) -> Timing:
        return Timing(self.batches, self.samples, self.t1 - self.t0)


def lightning_loop(cfg: DictConfig, dm, steps: int, warmup: int) -> float:
    """samples/s of our training path on CPU: LitPatchTST in a Trainer, batches from the DataModule."""
    from patchtst_hpo.models.lit_module import LitPatchTST

    torch.manual_seed(0)
    lit = LitPatchTST(
        model_config(cfg, arch_from_cfg(cfg), dims_from_cfg(cfg)),
        instantiate(cfg.optimizer),
        lambda opt, total_steps: warmup_cosine(opt, total_steps, 0.05, 0.1),
    )
    timer = StepTimer(warmup)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        limit_train_batches=warmup + steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        callbacks=[timer],
        num_sanity_val_steps=0,
    )
    trainer.fit(lit, train_dataloaders=dm.train_dataloader())
    return timer.timing().rate


def sync_fn(device: str) -> Callable[[], None] | None:
    """What waits for a device's queued work (None on CPU, where work is synchronous)."""
    return torch.cuda.synchronize if torch.device(device).type == "cuda" else None


def our_path(cfg: DictConfig, dm, steps: int, warmup: int) -> tuple[Timing, float]:
    """Our real app's objects (build_trainer, build_model, data on device, Trainer.fit), timed by a callback.

    `cfg` is a composed train config (trainer=gpu on a GPU). Returns the steady-state timing and the seconds from
    building the trainer to the first step's start (model build, Lightning set-up, first-step work).
    """
    from omegaconf import open_dict

    from patchtst_hpo.build import build_model, build_trainer
    from patchtst_hpo.devices import data_to_device

    torch.manual_seed(0)
    with open_dict(cfg), tempfile.TemporaryDirectory() as tmp:
        cfg.trainer.max_epochs, cfg.trainer.max_steps = -1, warmup + steps
        cfg.trainer.limit_val_batches, cfg.trainer.enable_progress_bar = 0, False
        cfg.trainer.enable_checkpointing = (
            False  # steady state; gpu_check.sh times real runs with checkpoints
        )
        cfg.trainer.default_root_dir = tmp  # nothing is written there (no logger, no checkpoints)
        cfg.callbacks, cfg.logger = {}, {}
        t = time.perf_counter()
        trainer = build_trainer(cfg)
        timer = StepTimer(warmup, sync_fn(trainer.strategy.root_device))
        trainer.callbacks.append(timer)
        lit = build_model(cfg, arch_from_cfg(cfg), dims_from_cfg(cfg), trainer)
        data_to_device(dm.datasets, trainer.strategy.root_device)
        trainer.fit(lit, datamodule=dm)
    return timer.timing(), timer.first_step_at - t


def matmul_rate(n: int, repeats: int, device: str = "cpu", dtype: torch.dtype = torch.float32) -> float:
    """Dense matmul FLOP/s of this device (the denominator of MFU): median of `repeats` timings of 3 matmuls."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    sync = sync_fn(device) or (lambda: None)
    torch.mm(a, b)
    rates = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        for _ in range(3):
            torch.mm(a, b)
        sync()
        rates.append(3 * 2 * n**3 / (time.perf_counter() - t))
    return statistics.median(rates)
