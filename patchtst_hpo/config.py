"""Where the config tree lives, and what must be registered before Hydra composes it.

Importing this module (every entry point does) registers
- the `arch` config group: one entry per point of the grid in `conf/grid/default.yaml`, generated here so
  the group and the grid cannot drift apart;
- the typed schemas of the groups users edit (`patchtst_hpo/schemas.py`);
- the resolvers: `feature_count` (so `data.num_features` follows the chosen feature tier), `direction_mode`,
  `project_root` (the repository in a checkout, the current folder when installed), `data_home` (a data
  folder, seeded with the bundled sample on first use; see `home.py`) and `if_trial` (the checkpoint policy
  follows whether the run is a sweep trial).

Import-light on purpose (no torch, no Lightning): `--help` and config errors must not wait for them.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from patchtst_hpo import schemas
from patchtst_hpo.home import register_resolvers
from patchtst_hpo.models.arch_grid import generate
from patchtst_hpo.paths import CONF_DIR, GRID_DIR
from patchtst_hpo.shared_store import SharedGroup, share_config_store


class _LazyArchGroup(SharedGroup):
    """The arch group: an entry's config node is built the first time Hydra reads it. Building all 1,000+
    DictConfigs at import cost over a second of every start (`--help`, a refused config) for the one or two
    a run uses. Hydra reads a group only by `name in group`, `group[name]` and `group.keys()`."""

    def __init__(self, archs: dict) -> None:
        super().__init__(dict.fromkeys(archs))
        self._archs = archs

    def __getitem__(self, key: str):
        node = super().__getitem__(key)
        if node is None:
            from hydra.core.config_store import ConfigNode

            a = self._archs[key]
            cfg = OmegaConf.create(
                {
                    "name": a.name,
                    "d_model": a.d_model,
                    "n_layers": a.n_layers,
                    "n_heads": a.n_heads,
                    "d_ff": a.d_ff,
                }
            )
            node = ConfigNode(name=key, node=cfg, group="arch", package=None, provider="patchtst_hpo")
            self[key] = node
        return node


def register_arch_group() -> list[str]:
    """Add one `arch/<name>` entry per point of every grid in `conf/grid/` to Hydra's ConfigStore.

    Returns the names. A grid is chosen per run (`grid=...`); the sweeper's `arch=NAME` overrides must resolve
    for any of them, so the group is their union (a point in two grids is one entry).
    """
    archs = sorted({a for f in sorted(GRID_DIR.glob("*.yaml")) for a in generate(OmegaConf.load(f))})
    ConfigStore.instance().repo["arch"] = _LazyArchGroup({f"{a.name}.yaml": a for a in archs})
    return [a.name for a in archs]


def _feature_count(tier: str, vix: object = None) -> int:
    from patchtst_hpo.data.features import feature_names

    return len(feature_names(tier, with_vix=bool(vix)))


def _direction_mode(direction: str) -> str:
    """`maximize`/`minimize` (Optuna's words) -> `max`/`min` (Lightning's)."""
    modes = {"maximize": "max", "minimize": "min"}
    if direction not in modes:
        from patchtst_hpo.errors import ConfigError

        raise ConfigError(f"objective.direction={direction!r}: use maximize or minimize")
    return modes[direction]


def _if_trial(trial_number: object, in_trial: object, otherwise: object) -> object:
    """`${if_trial:${trial.number},A,B}`: A in a sweep trial (the sweeper sets trial.number), else B."""
    return otherwise if trial_number is None else in_trial


ARCH_NAMES = register_arch_group()
schemas.register()  # schemas/<group>: the typed schemas the group YAML files name in their defaults
share_config_store()
register_resolvers()
for _name, _fn in (
    ("feature_count", _feature_count),
    ("direction_mode", _direction_mode),
    ("if_trial", _if_trial),
):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)


def compose(config_name: str = "train", overrides: Sequence[str] = ()) -> DictConfig:
    """Compose a config from `conf/` outside a Hydra app (CLIs that make no run dir, tests)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    from patchtst_hpo.errors import ConfigError

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=list(overrides))
    except HydraException as e:
        from patchtst_hpo.messages import one_line

        raise ConfigError(one_line(e)) from e
