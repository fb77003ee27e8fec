"""This project's planner (`hydra.sweeper.planner` in conf/hydra/sweeper/patchtst.yaml): grid cells -> studies.

Each cell of the command-line grid (`budget=tiny,2M task=...`) is one study named
`<study_name>.<budget>.<task>[.<key>=<value>]`; unless `arch` is given, it searches the arch candidates of its
budget and data dims; its shape extremes are queued cheapest first after the sampler's random start-up
trials and one model-guided trial (`_extremes_after`), and its identity holds the data's contents (the
processed dataset's version and sha256, its raw inputs', the pipeline version). Every
job gets the objective, `test=false` and, with a shared storage, the `trial.*` keys it reports through.
With `hydra.sweeper.transfer_from` the training hyperparameters are the source study's best (hpo/transfer.py):
fixed in every study, no longer searched, and recorded in its identity and `transfer_from` attribute.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import optuna
from omegaconf import OmegaConf

from patchtst_hpo.hpo import search_space, transfer
from patchtst_hpo.hpo.planner import Planner, StudyPlan

log = logging.getLogger(__name__)


def cheapest_first(cands: list, cfg) -> list:
    """Extremes in the order they cost on a CPU: fewest layers first (at equal parameters each layer's fixed
    per-step cost dominates: at 2M the 48-layer extreme took ~7x the wall of a 2-layer one), then FLOPs."""
    from patchtst_hpo.models.arch_grid import dims_from_cfg, forward_flops

    dims = dims_from_cfg(cfg)
    return sorted(cands, key=lambda c: (c.arch.n_layers, forward_flops(c.arch, dims), c.arch.name))


class BudgetPlanner(Planner):
    grid_as_studies = True  # a command-line comma list is a grid of studies
    supports_transfer = True
    _transfer: transfer.Transfer | None = None  # set by studies() under hydra.sweeper.transfer_from

    def studies(self, plan: search_space.SweepPlan) -> list[StudyPlan]:
        ctx = self.ctx
        self._transfer = None
        if ctx.transfer_from is not None:
            url = ctx.public_url if ctx.shared_storage else None
            self._transfer = transfer.load(url, ctx.transfer_from, len(ctx.directions))
            plan = self._with_transfer(plan, self._transfer)
        searched_arch = (
            "arch" not in plan.grid
            and "arch" not in plan.space
            and not any(f.split("=")[0] == "arch" for f in plan.fixed)
        )
        out = []
        for values in search_space.cells(plan.grid):
            overrides = [*plan.fixed, *(search_space.override(k, v) for k, v in values.items())]
            out.append(self._study(plan, values, overrides, searched_arch))
        return out

    @staticmethod
    def _with_transfer(plan: search_space.SweepPlan, t: transfer.Transfer) -> search_space.SweepPlan:
        """The plan with the source's params fixed (a key the user fixed or gridded keeps the user's value)
        and no longer searched."""
        mine = {f.split("=")[0].lstrip("+~") for f in plan.fixed} | set(plan.grid)
        fixed = [*plan.fixed, *t.overrides(skip=mine)]
        space = {k: d for k, d in plan.space.items() if k not in t.params}
        log.info(
            "%s=%s: trial %d's %s (searched no more: %s; still searched: %s)",
            transfer.KEY,
            t.study,
            t.trial,
            t.params,
            sorted(set(plan.space) - set(space)),
            sorted(space),
        )
        return dataclasses.replace(plan, fixed=fixed, space=space)

    def _study(self, plan, values: dict[str, Any], overrides: list[str], searched_arch: bool) -> StudyPlan:
        """One grid cell's study: its config, arch candidates and extremes, identity and description."""
        from patchtst_hpo.models.arch_grid import budget_candidates, extremes

        cfg = self.ctx.compose(overrides)
        name = self._name(cfg, values)
        space = dict(plan.space)
        cands = budget_candidates(cfg) if searched_arch else []  # ConfigError (nearest named) if empty
        arch_names = [c.arch.name for c in cands]
        params_by_arch = {c.arch.name: c.params for c in cands}
        if arch_names:
            space["arch"] = optuna.distributions.CategoricalDistribution(arch_names)
        ident = self.identity(
            plan.space,
            overrides,
            arch_candidates=arch_names,
            data_id=self._data_id(cfg),
            data=self._data_entry(cfg),
        )
        if self._transfer is not None:  # recorded, and a resume under another source (or best) is refused
            self._transfer.check_parametrization(cfg, name)
            ident["transfer_from"] = self._transfer.provenance()
        return StudyPlan(
            name=name,
            overrides=overrides,
            space=space,
            cfg=cfg,
            identity=ident,
            values=values,
            enqueue=[{"arch": c.arch.name} for c in cheapest_first(extremes(cands), cfg)] if cands else [],
            enqueue_as="extreme",
            enqueue_after=self._extremes_after(len(extremes(cands)) if cands else 0),
            user_attrs={
                "budget": str(cfg.budget.name),
                "task": str(cfg.task.name),
                "data_version": str(cfg.data.version),
                "arch_params": params_by_arch,
                "parametrization": transfer.parametrization(cfg),  # what a transfer from this study needs
            },
            out_dir=name,
        )

    def _extremes_after(self, n_extremes: int) -> int:
        """Trials before the extremes are queued: the sampler's random start-up trials and one model-guided
        trial (so a study yields a guided trial before its slowest extreme), but never so many that the
        extremes no longer fit in n_trials; 0 (first) for samplers without start-up trials."""
        startup = OmegaConf.select(self.ctx.config, "hydra.sweeper.sampler.n_startup_trials")
        n_trials = OmegaConf.select(self.ctx.config, "hydra.sweeper.n_trials")
        if not n_extremes or not isinstance(startup, int) or not isinstance(n_trials, int):
            return 0
        return max(0, min(startup + 1, n_trials - n_extremes))

    def _name(self, cfg, values: dict[str, Any]) -> str:
        extra = [f"{k}={v}" for k, v in values.items() if k not in ("budget", "task")]
        prefix = [self.ctx.prefix] if self.ctx.prefix is not None else []
        return ".".join([*prefix, str(cfg.budget.name), str(cfg.task.name), *extra])

    @staticmethod
    def _data_id(cfg) -> str:
        from patchtst_hpo.data import panel, processed  # pandas: imported when a study is planned

        d = cfg.data
        if d.get("panel"):  # a panel is named by data.panel (data.ohlcv is null)
            return panel.dataset_id(d.panel, d.tier)
        return processed.dataset_id(d.ohlcv, d.tier, d.vix)

    @staticmethod
    def _data_entry(cfg) -> dict | None:
        """The processed dataset's manifest entry the trials will read (built now if it is not yet): its
        version, sha256, raw inputs and pipeline version go into the study identity. Data that cannot be
        read gives None here; the trials then fail with the data's own error (the sweep's failure policy)."""
        from patchtst_hpo.data import panel, processed
        from patchtst_hpo.errors import DataError

        d = cfg.data
        try:
            if d.get("panel"):
                return panel.build(d.root, d.panel, d.tier, d.version)[0]
            return processed.build(d.root, d.ohlcv, d.tier, d.vix, d.version)[0]
        except DataError as e:
            log.warning("data of %s not readable for the study identity: %s", d.get("panel") or d.ohlcv, e)
            return None

    def trial_overrides(self, study: StudyPlan, trial: optuna.trial.Trial, chosen: dict) -> list[str]:
        """The project's task: what it returns, no test period, its trial identity (for pruning)."""
        ctx = self.ctx
        arch_params = study.user_attrs["arch_params"]
        if chosen.get("arch") in arch_params:
            trial.set_user_attr("params", arch_params[chosen["arch"]])
        out = []
        if ctx.metric is not None:  # hydra/sweeper=patchtst sets both from objective.*
            out += [
                search_space.override("objective.metric", ctx.metric),
                search_space.override("objective.direction", ctx.direction),
            ]
        out.append("test=false")  # trials never see the test period; the report's confirmation does
        if ctx.shared_storage and len(ctx.directions) == 1:  # pruning needs a shared storage
            out += [
                search_space.override("trial.storage", ctx.public_url),
                search_space.override("trial.study", study.name),
                f"trial.number={trial.number}",
            ]
        return out

    def best_fields(self, study: StudyPlan, best: optuna.trial.FrozenTrial) -> tuple[dict, dict]:
        arch = best.params.get("arch", study.cfg.arch.name)
        params = best.user_attrs.get("params")
        return {"arch": arch, "params": params}, {"best_arch": arch, "params": params}
