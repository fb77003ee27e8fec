"""Training progress a researcher can follow on a slow CPU run and read back in a log file.

In a terminal: one status line (epoch, batch, rate, elapsed, last metrics), redrawn at most every
`refresh_seconds` during training and validation, so it moves even when an epoch takes minutes. Anywhere
else (a pipe, a log file, SLURM's .out): no status line, no escape or carriage-return characters. Either way
one plain log line per finished epoch (`epoch 3/10: 54 batches in 12.3 s | train/loss 0.612 | val/auc 0.712`),
which also lands in the run's log. `refresh_seconds: 0` is silent (sweeps with many trials, tests).
Selected by conf/callbacks/default.yaml (`progress`); `callbacks.progress=null` shows nothing.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar

log = logging.getLogger(__name__)
SHOWN = ("train/loss", "val/loss", "val/auc")  # the epoch line's metrics, when logged


class Progress(ProgressBar):
    def __init__(self, refresh_seconds: float = 2.0, terminal: bool | None = None) -> None:
        super().__init__()
        self.refresh_seconds = float(refresh_seconds)
        self.terminal = sys.stdout.isatty() if terminal is None else bool(terminal)
        self._enabled = self.refresh_seconds > 0
        self._drawn = 0  # width of the status line on screen (0: none)
        self._last_draw = 0.0
        self._epoch: dict[str, Any] | None = None  # the finished epoch, said once its metrics are logged

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = self.refresh_seconds > 0

    # ---- training ----
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._say_epoch(trainer)
        self._t0 = self._last_draw = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._status(trainer, f"batch {batch_idx + 1}/{_count(self.total_train_batches)}", batch_idx + 1)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if trainer.state.fn == "fit":
            self._status(trainer, f"validating {batch_idx + 1}/{_count(self.total_val_batches)}", None)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # The module logs train/loss after the callbacks' epoch-end hooks: said at the next epoch or the end.
        done = trainer.fit_loop.epoch_loop.batch_progress.current.completed
        self._epoch = {"n": trainer.current_epoch + 1, "batches": done, "s": time.monotonic() - self._t0}

    def on_train_end(self, trainer, pl_module) -> None:
        self._say_epoch(trainer)

    # ---- output ----
    def _status(self, trainer, what: str, batches: int | None) -> None:
        now = time.monotonic()
        if not (self._enabled and self.terminal) or now - self._last_draw < self.refresh_seconds:
            return
        self._last_draw = now
        elapsed = now - self._t0
        rate = f" | {batches / elapsed:.2f} it/s" if batches and elapsed > 0 else ""
        text = f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs} {what}{rate} | {elapsed:.0f} s"
        text += "".join(f" | {k} {v:.4g}" for k, v in _metrics(trainer).items())
        sys.stdout.write("\r" + text.ljust(self._drawn))
        sys.stdout.flush()
        self._drawn = len(text)

    def _say_epoch(self, trainer) -> None:
        if self._epoch is None or not self._enabled:
            return
        e, self._epoch = self._epoch, None
        if self._drawn:  # clear the status line so the log line starts at column 0
            sys.stdout.write("\r" + " " * self._drawn + "\r")
            self._drawn = 0
        parts = [f"epoch {e['n']}/{trainer.max_epochs}: {e['batches']} batches in {e['s']:.1f} s"]
        parts += [f"{k} {v:.4f}" for k, v in _metrics(trainer).items()]
        log.info(" | ".join(parts))


def _metrics(trainer) -> dict[str, float]:
    got = trainer.callback_metrics
    return {k: float(got[k]) for k in SHOWN if k in got}


def _count(n) -> str:
    return str(int(n)) if n != float("inf") else "?"


class _NoAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


_NO_ADVERTS = _NoAdverts()


def quiet_lightning() -> None:
    """Lightning's console lines once each and without its adverts ("Tip: ... litlogger").

    `import lightning` gives the `lightning` logger a stderr handler of its own, and that logger also
    propagates to the app's handlers (Hydra's console and log file): every INFO line was printed twice.
    Where the app has configured logging, Lightning's own handler goes. Called after importing lightning.
    """
    ours = logging.getLogger("lightning")
    if logging.getLogger().handlers:
        for h in list(ours.handlers):
            if type(h) is logging.StreamHandler:
                ours.removeHandler(h)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if _NO_ADVERTS not in logger.filters:
            logger.addFilter(_NO_ADVERTS)
