"""Job side of a trial: report the monitored metric each validation epoch and let the study prune.

The job rebuilds its trial from the shared storage (it may run in another process or on another machine,
e.g. under submitit), with the pruner the sweeper stored on the study, so `should_prune()` gives the
same answer it would in the sweeper.
"""

from __future__ import annotations

import logging
import math

import lightning as L
import optuna
from hydra.utils import instantiate

from patchtst_hpo.hpo.storage import open_storage

log = logging.getLogger(__name__)


def load_trial(storage_url: str, study_name: str, number: int) -> optuna.trial.Trial:
    storage = open_storage(storage_url)
    study = optuna.load_study(study_name=study_name, storage=storage)
    pruner_cfg = study.user_attrs.get("pruner")
    if pruner_cfg:
        study.pruner = instantiate(pruner_cfg)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    return optuna.trial.Trial(study, trial_id)


class PruningCallback(L.Callback):
    """Reports `monitor` after every validation epoch; raises `optuna.TrialPruned` when the pruner says so."""

    def __init__(self, storage: str, study: str, number: int, monitor: str):
        self.trial = load_trial(storage, study, number)
        self.monitor = monitor

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        epoch = trainer.current_epoch
        if not math.isfinite(value):
            return
        self.trial.report(value, step=epoch)
        if self.trial.should_prune():
            msg = f"pruned at epoch {epoch} ({self.monitor}={value:.4f})"
            log.info(msg)
            raise optuna.TrialPruned(msg)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.trial.set_user_attr("epochs", int(trainer.current_epoch))
