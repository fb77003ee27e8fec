"""Checks of the run as a whole: no key added to a typed group by `+`, seed, test, checkpoint."""

from __future__ import annotations

from dataclasses import is_dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.validation.values import bad, show


def check_unknown_keys(cfg: DictConfig) -> None:
    """Keys added with `+group.key=...` to a typed group (Hydra's `+` bypasses the schema)."""
    from patchtst_hpo.messages import suggest

    for group in cfg:
        node = cfg.get(group) if OmegaConf.is_dict(cfg) else None
        schema = OmegaConf.get_type(node) if OmegaConf.is_dict(node) else None
        if not (schema and is_dataclass(schema)):
            continue
        known = set(schema.__dataclass_fields__)
        for key in node:
            if key not in known:
                hint = suggest(f"{group}.{key}", show(node[key]))
                raise ConfigError(
                    f"{group}.{key}={show(node[key])}: {group} has no key '{key}' (a +{group}.{key} override "
                    f"adds it and nothing reads it); {hint or 'remove it'}"
                )


def check_run(cfg: DictConfig) -> None:
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise bad("seed", seed, "an integer, e.g. seed=42")
    if not isinstance(cfg.get("test"), bool):
        raise bad("test", cfg.get("test"), "true or false (evaluate the best checkpoint on the test period)")
    ckpt = cfg.get("ckpt_path")
    if ckpt is not None and not Path(str(ckpt)).is_file():
        raise bad("ckpt_path", ckpt, "no such file; point it at a run's checkpoints/last.ckpt")
    if ckpt is not None and _head(Path(str(ckpt))) != b"PK\x03\x04":  # torch.save writes a zip
        raise bad(
            "ckpt_path", ckpt, "not a checkpoint (torch.save writes a zip); point it at checkpoints/last.ckpt"
        )


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(4)
    except OSError:
        return b""


def check_loggers(cfg: DictConfig) -> None:
    """A logger whose package is missing fails here, not after data and model set-up (TensorBoard is the
    `tensorboard` extra: Lightning takes the tensorboard or tensorboardX package)."""
    import importlib.util

    for name, lg in (cfg.get("logger") or {}).items():
        target = str((lg or {}).get("_target_", ""))
        if target.endswith("TensorBoardLogger") and not any(
            importlib.util.find_spec(p) for p in ("tensorboard", "tensorboardX")
        ):
            raise bad(
                f"logger.{name}",
                target,
                "TensorBoard is not installed: pip install -e '.[tensorboard]' (an installed package: "
                "pip install 'patchtst_hpo[tensorboard]'), or logger=csv",
            )


# lightning-hydra-template keys this app does not read: each says where its meaning lives here.
LHT_KEYS = {
    "optimized_metric": "the value returned to the sweeper is objective.metric (with objective.direction): "
    "objective.metric={value}",
    "tags": "this app keeps no run tags; name a run with hydra.job.name=... and a sweep's studies with "
    "hydra.sweeper.study_name=...",
}


def check_template_keys(cfg: DictConfig) -> None:
    """`optimized_metric` and `tags` (lightning-hydra-template habits) are refused with the fix, never ignored."""
    for key, fix in LHT_KEYS.items():
        if key in cfg:
            value = show(cfg[key])
            raise bad(key, value, f"lightning-hydra-template's key, not read here: {fix.format(value=value)}")
