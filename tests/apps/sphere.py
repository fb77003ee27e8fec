"""x^2 + y^2 (minimum 0 at the origin); `error=true` makes every job raise (failure-rate tests)."""

import hydra
from omegaconf import DictConfig


@hydra.main(config_path="sphere_conf", config_name="config", version_base="1.3")
def sphere(cfg: DictConfig) -> float:
    if cfg.error:
        raise RuntimeError("cfg.error is True")
    return float(cfg.x) ** 2 + float(cfg.y) ** 2


if __name__ == "__main__":
    sphere()
