"""Lightning callbacks for tests of multi-process runs, added with `+callbacks.<name>._target_=tests.rank_probes.X`.

GradProbe (`folder=DIR`): writes DIR/rank<R>.json, max |grad| and total grad norm of every optimizer step.
StopRank (`rank`, `trial`, `when_trial`, `sig`): in the given sweep trial, that rank sends itself `sig` (KILL:
dies; STOP: hangs) in the middle of its second training epoch.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import lightning as L
import torch


class GradProbe(L.Callback):
    def __init__(self, folder: str):
        self.folder, self.steps = Path(folder), []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        def probe(optimizer, args, kwargs):  # after optimizer.step(): the gradients it applied, clipped
            params = [p for group in optimizer.param_groups for p in group["params"]]
            grads = [p.grad.detach().float() for p in params if p.grad is not None]
            self.steps.append(
                {
                    "max_abs": max(float(g.abs().max()) for g in grads),
                    "norm": float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))),
                }
            )

        for opt in trainer.optimizers:
            opt.register_step_post_hook(probe)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.steps))


class StopRank(L.Callback):
    def __init__(self, rank: int, trial, when_trial: int = 0, sig: str = "KILL"):
        self.rank, self.hit, self.sig = int(rank), trial is not None and int(trial) == int(when_trial), sig

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self.hit and trainer.global_rank == self.rank and trainer.current_epoch == 1 and batch_idx == 1:
            os.kill(os.getpid(), getattr(signal, f"SIG{self.sig}"))
