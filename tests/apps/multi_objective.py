"""Binh and Korn: two objectives to minimise; the Pareto front trades one against the other."""

import hydra
from omegaconf import DictConfig


@hydra.main(config_path="multi_conf", config_name="config", version_base="1.3")
def binh_korn(cfg: DictConfig) -> tuple[float, float]:
    x, y = float(cfg.x), float(cfg.y)
    return 4 * x**2 + 4 * y**2, (x - 5) ** 2 + (y - 5) ** 2


if __name__ == "__main__":
    binh_korn()
