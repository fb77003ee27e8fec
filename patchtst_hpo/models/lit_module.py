"""LightningModule around PatchTST: loss, epoch metrics on val/test, AdamW with warmup + cosine."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.trainer.states import TrainerFn
from torch.optim.lr_scheduler import LambdaLR

from patchtst_hpo import metrics
from patchtst_hpo.models import mup
from patchtst_hpo.models.patchtst import EncoderLayer, PatchTST, PatchTSTConfig

# Library noise that says nothing about the run. Filtered here, in the module every process that trains
# imports (joblib/submitit workers unpickle LitPatchTST, not the entry point's module-level code):
# our LightningModule moves its own batches on purpose, and batches come from one in-memory tensor, so
# Lightning's advice to add DataLoader workers does not apply (data.num_workers).
warnings.filterwarnings("ignore", message="You have overridden `transfer_batch_to_device`")
warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)")
warnings.filterwarnings("ignore", message=".*does not have many workers which may be a bottleneck")
# Under DDP every rank evaluates the whole val/test split with the same weights, so its epoch metrics are already
# the same on every rank (train.py records the objective of each rank); there is nothing to sync.
warnings.filterwarnings("ignore", message=r"It is recommended to use `self.log\('(val|test)/")


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float, min_lr_ratio: float
) -> LambdaLR:
    """Linear warmup over `warmup_fraction` of the steps, then cosine decay to `min_lr_ratio` of the lr."""
    warmup = max(int(total_steps * warmup_fraction), 0)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min((step - warmup) / max(total_steps - warmup, 1), 1.0)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def fsdp_wrap_policy():
    """FSDP wraps each encoder layer as one shard unit (trainer=fsdp)."""
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    return ModuleWrapPolicy({EncoderLayer})


class LitPatchTST(L.LightningModule):
    """Binary (num_classes=1, BCE) or 2-class (softmax, cross-entropy) PatchTST classifier.

    Val/test metrics are computed once per epoch on all predictions (AUC is not a mean of batch AUCs).
    The decision threshold for accuracy/precision/recall/F1 is chosen on val and reused on test.
    """

    def __init__(
        self,
        model: PatchTSTConfig,
        optimizer: Callable,
        scheduler: Callable | None,
        loss: str = "bce",
        pos_weight: float | None = None,
        focal_gamma: float = 2.0,
    ):
        super().__init__()
        self.save_hyperparameters(
            {"model": asdict(model), "loss": loss, "pos_weight": pos_weight, "focal_gamma": focal_gamma}
        )
        self.model = PatchTST(model)
        self.optimizer_fn, self.scheduler_fn = optimizer, scheduler
        self.loss_name, self.pos_weight, self.focal_gamma = loss, pos_weight, focal_gamma
        self.threshold = 0.5
        self._outputs: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"val": [], "test": []}
        self.results: dict[str, dict[str, float]] = {}
        self.predictions: dict[str, tuple] = {}  # split -> (labels, probabilities) of the last epoch
        self.train_started_at: float | None = None
        # Training samples over the run (this rank), kept across a resume; a list, so no setattr per step.
        self._seen = [0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if logits.shape[-1] > 1:
            return F.cross_entropy(logits.float(), y.long())
        logits = logits.squeeze(-1).float()
        pw = None if self.pos_weight is None else torch.tensor(self.pos_weight, device=logits.device)
        bce = F.binary_cross_entropy_with_logits(logits, y, pos_weight=pw, reduction="none")
        if self.loss_name == "focal":
            p = torch.sigmoid(logits)
            pt = torch.where(y > 0.5, p, 1 - p)
            bce = bce * (1 - pt) ** self.focal_gamma
        return bce.mean()

    def _prob(self, logits: torch.Tensor) -> torch.Tensor:
        if logits.shape[-1] > 1:
            return torch.softmax(logits.float(), -1)[:, 1]
        return torch.sigmoid(logits.squeeze(-1).float())

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        """Our batches are an (x, y) pair: move it directly instead of walking a generic collection."""
        x, y = batch
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    @property
    def samples_seen(self) -> int:
        return self._seen[0]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["samples_seen"] = self._seen[0]

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if self._trainer is not None and self.trainer.state.fn == TrainerFn.FITTING:  # a resume, not an eval
            self._seen[0] = int(checkpoint.get("samples_seen", 0))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self._loss(self(x), y)
        # Summed on the device and logged once per epoch: no host sync per step (no .item(), no float()), and
        # a per-step self.log costs more than a tiny model's step.
        self._train_sum[0].add_(loss.detach() * len(y))  # in place: no Module.__setattr__ per step
        self._train_sum[1] += len(y)
        self._seen[0] += len(y)
        return loss

    def on_train_epoch_start(self) -> None:
        self._train_sum = [torch.zeros((), device=self.device), 0]

    def on_train_epoch_end(self) -> None:
        if self._train_sum[1]:
            # each rank's mean over its shard (equal shard sizes), averaged over ranks
            self.log("train/loss", self._train_sum[0] / self._train_sum[1], prog_bar=True, sync_dist=True)

    def _eval_step(self, split: str, batch) -> None:
        x, y = batch
        logits = self(x)
        self.log(f"{split}/loss", self._loss(logits, y), on_step=False, on_epoch=True, batch_size=len(y))
        self._outputs[split].append((self._prob(logits).detach().cpu(), y.detach().cpu()))

    def validation_step(self, batch, batch_idx):
        self._eval_step("val", batch)

    def test_step(self, batch, batch_idx):
        self._eval_step("test", batch)

    def _eval_epoch_end(self, split: str) -> None:
        outs = self._outputs[split]
        if not outs:
            return
        p = torch.cat([o[0] for o in outs]).double().numpy()
        y = torch.cat([o[1] for o in outs]).double().numpy()
        self._outputs[split] = []
        if split == "val":
            self.threshold = metrics.best_f1_threshold(y, p)
        res = metrics.binary_metrics(y, p, self.threshold)
        self.results[split] = res
        self.predictions[split] = (y, p)
        for k, v in res.items():
            if k != "n":
                self.log(f"{split}/{k}", v, prog_bar=k == "auc")

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        """Clip by norm or by value (trainer.gradient_clip_val, trainer.gradient_clip_algorithm; null = norm).

        Under FSDP a rank holds a shard of each gradient: by norm, FSDP's own `clip_grad_norm_` on the root module
        takes the norm over all shards (Lightning's FSDP plugin refuses "norm"); by value, a clamp is elementwise,
        so Lightning's clipping of the local shard is exact. Otherwise every rank holds whole gradients (DDP
        all-reduces them before this hook) and torch clips them directly: Lightning's mixed-precision plugin
        refuses any clipping with a fused AdamW, although under bf16 autocast the gradients are never scaled
        (fp16 with a fused AdamW and clipping is refused in validation).
        """
        if not gradient_clip_val:
            return
        from torch.distributed.fsdp import FullyShardedDataParallel

        clip, by_value = float(gradient_clip_val), gradient_clip_algorithm == "value"  # a str enum, or None
        root = self.trainer.strategy.model
        if isinstance(root, FullyShardedDataParallel):
            if by_value:
                self.clip_gradients(optimizer, clip, "value")
            else:
                root.clip_grad_norm_(clip)
        elif by_value:
            torch.nn.utils.clip_grad_value_(self._params, clip)
        else:
            torch.nn.utils.clip_grad_norm_(self._params, clip)

    def on_fit_start(self) -> None:
        self._params = [p for p in self.parameters() if p.requires_grad]  # walked once, not every step

    def on_train_start(self) -> None:
        self.train_started_at = time.time()  # wall clock: set-up ends, the first step begins

    def make_optimizer(self, total_steps: int) -> tuple[torch.optim.Optimizer, LambdaLR | None]:
        """The configured optimizer over the parametrisation's groups, and its per-step schedule (or None).

        Matrices decay, vectors and the positional embedding do not; µP/depth lr multipliers per group."""
        opt = self.optimizer_fn(mup.param_groups(self.model, self.model.scales))
        mup.apply_lr_multipliers(opt)  # before the scheduler records each group's initial lr
        return opt, None if self.scheduler_fn is None else self.scheduler_fn(opt, total_steps=total_steps)

    def configure_optimizers(self):
        total = int(self.trainer.estimated_stepping_batches) if self.scheduler_fn is not None else 0
        opt, sched = self.make_optimizer(total)
        if sched is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
