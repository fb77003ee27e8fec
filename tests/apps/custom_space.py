"""Sphere in four dimensions where z is searched near x by a custom search-space function."""

import hydra
from omegaconf import DictConfig
from optuna.trial import Trial


@hydra.main(config_path="custom_conf", config_name="config", version_base="1.3")
def sphere4(cfg: DictConfig) -> float:
    return float(cfg.w) ** 2 + float(cfg.x) ** 2 + float(cfg.y) ** 2 + float(cfg.z) ** 2


def configure(cfg: DictConfig, trial: Trial) -> None:
    """hydra.sweeper.custom_search_space: called by the sweeper after the configured params are drawn."""
    x = trial.params["x"]
    trial.suggest_float("z", x - cfg.max_z_difference_from_x, x + cfg.max_z_difference_from_x)
    trial.suggest_float("+w", 0.0, 1.0)  # `+w`: w is not in the config, the override adds it


if __name__ == "__main__":
    sphere4()
