"""The sphere, but the first job to find no marker file SIGKILLs its own process (a lost launcher worker)."""

import os
import signal
from pathlib import Path

import hydra
from omegaconf import DictConfig


@hydra.main(config_path="sphere_conf", config_name="config", version_base="1.3")
def crash(cfg: DictConfig) -> float:
    marker = Path(cfg.marker)
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # exactly one job wins
    except FileExistsError:
        return float(cfg.x) ** 2 + float(cfg.y) ** 2
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
    return 0.0


if __name__ == "__main__":
    crash()
