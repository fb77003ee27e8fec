"""A Lightning callback for tests: the gradients each optimizer step applies (after clipping), per rank.

Added to a run with `+callbacks.grad_probe._target_=tests.grad_probe.GradProbe
+callbacks.grad_probe.folder=DIR`; writes DIR/rank<R>.json: max |grad| and total grad norm of every step.
"""

from __future__ import annotations

import json
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
