"""Job side of a trial: report the monitored metric once per training epoch and let the study prune.

The job opens its trial in the shared storage (it may run in another process or on another machine,
e.g. under submitit) through `job_trial.JobTrial`, with the pruner the sweeper stored on the study, so
`should_prune()` gives the answer Optuna's pruner gives, without reading the whole study at each report.
The stored pruner is data (hpo/pruners.py): only allowlisted Optuna pruners with plain arguments are
built. Reports happen during `trainer.fit` only: the post-fit `trainer.validate(best checkpoint)` and
`trainer.test` never report, so a trial that trained to the end is never pruned.
"""

from __future__ import annotations

import logging
import math

import lightning as L
import optuna

from patchtst_hpo.hpo.job_trial import JobTrial

log = logging.getLogger(__name__)

# metrics.json keys copied onto the trial (compute accounting: issue 14's loss-vs-compute plots; whether
# trainer.max_time stopped it: issue 19).
RECORDED = ("train_flops", "samples_seen", "tokens_seen", "checkpoint_bytes", "fit_seconds", "time_limited")


class PruningCallback(L.Callback):
    """Reports `monitor` after each training epoch's validation; raises `optuna.TrialPruned` when told to.

    With several ranks only rank 0 opens the study and reports; its decision is broadcast, so every rank
    stops in the same epoch (a rank left alone would wait in its next collective).
    """

    def __init__(self, storage: str, study: str, number: int, monitor: str):
        self.where = (storage, study, number)
        self.trial: JobTrial | None = None
        self.monitor = monitor
        self.fitting = False
        self.last_epoch: int | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fitting = True
        if trainer.is_global_zero and self.trial is None:
            self.trial = JobTrial(*self.where)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.fitting or trainer.state.fn != "fit" or trainer.sanity_checking:
            return  # trainer.validate()/test() after fit, or the sanity check: nothing to report
        epoch = trainer.current_epoch
        if self.monitor not in trainer.callback_metrics or epoch == self.last_epoch:
            return  # one step per epoch, even with val_check_interval < 1
        value = float(trainer.callback_metrics[self.monitor])
        if not math.isfinite(value):
            return
        self.last_epoch = epoch
        prune = False
        if self.trial is not None:  # rank 0
            self.trial.report(value, step=epoch)
            prune = self.trial.should_prune()
        if trainer.world_size > 1:
            prune = trainer.strategy.broadcast(prune, src=0)
        if prune:
            msg = f"pruned at epoch {epoch} ({self.monitor}={value:.4f})"
            log.info(msg)
            raise optuna.TrialPruned(msg)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fitting = False
        if self.trial is not None:
            self.trial.set_user_attr("epochs", int(trainer.current_epoch))

    def record(self, result: dict) -> None:
        """Put the run's compute accounting on its trial, so the report reads it from the study itself."""
        if self.trial is None:
            self.trial = JobTrial(*self.where)
        for key in RECORDED:
            if result.get(key) is not None:
                self.trial.set_user_attr(key, result[key])
