"""Checkpoint files named as the run reports its epochs: counted from 1.

metrics.json's `best_epoch` and the progress lines count epochs from 1 (`best_epoch: 8` = trained 8 epochs,
what the report's confirmation refits); Lightning's `{epoch}` counts from 0, which named that checkpoint
`epoch007.ckpt`. This ModelCheckpoint fills `{epoch}` from 1, so the best file of that run is `epoch008.ckpt`.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint


class EpochCheckpoint(ModelCheckpoint):
    def format_checkpoint_name(self, metrics, filename=None, ver=None, prefix=None) -> str:
        if "epoch" in metrics:
            metrics = {**metrics, "epoch": metrics["epoch"] + 1}
        return super().format_checkpoint_name(metrics, filename=filename, ver=ver, prefix=prefix)
