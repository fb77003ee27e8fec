"""The transfer section (issue 23): does the best learning rate stay put across widths under µP, and does a
budget ladder searched with transfer reach the from-scratch answer with fewer trials?

Both parts run on the planted-signal panel (`data synth`, docs/data.md "Known-answer check"), built into a
private data root. Part 1, the lr sweep: for each parametrisation, width, lr and seed, the real LitPatchTST
(its parameter groups and lr multipliers) trains for `steps` AdamW steps with the configured warmup-cosine
schedule; the score is the val log loss. Part 2, the ladder: `python -m patchtst_hpo.train -m` sweeps of the ka*
budgets, from scratch and with `hydra.sweeper.transfer_from` (docs/hpo.md "Transfer").
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from patchtst_hpo.bench.loops import cycle
from patchtst_hpo.build import new_lit_module
from patchtst_hpo.config import compose
from patchtst_hpo.data import panel, synthetic
from patchtst_hpo.data.datamodule import WindowDataModule
from patchtst_hpo.models.arch_grid import arch_from_cfg, dims_from_cfg

log = logging.getLogger(__name__)
PANEL = "KNOWN.ANSWER"


def make_panel(root: Path, p: DictConfig) -> Path:
    """The planted-signal panel under `root` (a data root), built once."""
    if not (root / "raw" / "manifest.json").exists():
        files = root / "synth_files"
        synthetic.write(files, symbols=int(p.symbols), days=int(p.days), seed=int(p.seed))
        panel.ingest_panel(str(files), PANEL, root)
    return root


def _config(root: Path, overrides: list[str]) -> DictConfig:
    return compose("train", ["experiment=known_answer", f"paths.data_dir={root}", *overrides])


def _val_loss(lit, dm: WindowDataModule) -> tuple[float, float]:
    """(val log loss, val AUC) of the model on the whole val split."""
    from patchtst_hpo.metrics import auc

    lit.eval()
    ps, ys, total, n = [], [], 0.0, 0
    with torch.no_grad():
        for x, y in dm.val_dataloader():
            logits = lit(x)
            total += float(lit._loss(logits, y)) * len(y)
            n += len(y)
            ps.append(lit._prob(logits).numpy())
            ys.append(y.numpy())
    lit.train()
    return total / n, float(auc(np.concatenate(ys), np.concatenate(ps)))


def sweep_run(cfg: DictConfig, dm: WindowDataModule, steps: int, tail: int) -> dict:
    """Train the composed config's model for `steps` steps (seeded by `cfg.seed`): the mean training loss of
    the last `tail` steps (what µP's lr transfer is about; TP5 Fig. 1), and the val loss and AUC at the end."""
    torch.manual_seed(int(cfg.seed))
    lit = new_lit_module(cfg, arch_from_cfg(cfg), dims_from_cfg(cfg))
    opt, sched = lit.make_optimizer(steps)
    losses = []
    for x, y in cycle(dm.train_dataloader, steps):
        loss = lit._loss(lit(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.detach())
    train_loss = float(torch.stack(losses[-tail:]).mean())
    val_loss, auc = _val_loss(lit, dm)
    ok = math.isfinite(train_loss) and math.isfinite(val_loss)
    return {"train_loss": train_loss if ok else None, "val_loss": val_loss if ok else None, "val_auc": auc}


def lr_sweep(root: Path, s: DictConfig) -> list[dict]:
    """One row per (parametrisation, width, lr, seed): arch d<w>_l<L>_h<H>_f<2w>, base width `s.base_width`."""
    rows = []
    for par, width in itertools.product(s.parametrizations, s.widths):
        shape = {"d_model": width, "n_layers": s.n_layers, "n_heads": s.n_heads, "d_ff": 2 * width}
        name = "d{d_model}_l{n_layers}_h{n_heads}_f{d_ff}".format(**shape)  # need not be a grid point
        base = [
            "arch=d4_l1_h1_f8",
            f"arch.name={name}",
            *(f"arch.{k}={v}" for k, v in shape.items()),
            f"model.parametrization={par}",
            f"model.mup_base_width={s.base_width}",
        ]
        cfg = _config(root, [*base, "budget=ka400", "model.dropout=0.0", f"data.batch_size={s.batch_size}"])
        dm = WindowDataModule(cfg.data, cfg.task, 0)
        dm.setup()
        for lr, seed in itertools.product(s.lrs, s.seeds):
            t0 = time.perf_counter()
            run_cfg = cfg.copy()
            run_cfg.optimizer.lr, run_cfg.seed = float(lr), int(seed)
            row = {"parametrization": par, "width": width, "lr": float(lr), "seed": int(seed)}
            row |= sweep_run(run_cfg, dm, int(s.steps), int(s.tail))
            row["seconds"] = round(time.perf_counter() - t0, 2)
            log.info("lr sweep %s", row)
            rows.append(row)
    return rows


def best_lrs(rows: list[dict], lrs: list[float], key: str = "train_loss") -> dict[str, dict]:
    """Per parametrisation: the best lr per width (lowest `key`, mean over seeds; a diverged run counts as
    infinitely bad) and how far it moves across the widths in grid steps."""
    out: dict[str, dict] = {}
    for par in dict.fromkeys(r["parametrization"] for r in rows):
        best = {}
        for width in dict.fromkeys(r["width"] for r in rows if r["parametrization"] == par):
            mean = {
                lr: float(
                    np.mean(
                        [
                            r[key] if r[key] is not None else np.inf
                            for r in rows
                            if (r["parametrization"], r["width"], r["lr"]) == (par, width, lr)
                        ]
                    )
                )
                for lr in lrs
            }
            best[width] = min(mean, key=mean.get)
        idx = [lrs.index(v) for v in best.values()]
        out[par] = {"best_lr": best, "shift_grid_steps": max(idx) - min(idx)}
    return out


def transfer_section(bcfg: DictConfig, out: Path) -> dict:
    """The parts named in `bench.transfer.parts` (lr_sweep, ladder) on a panel under `out/ka_data`."""
    t = bcfg.transfer
    root = make_panel(out / "ka_data", t.panel)
    res: dict = {"panel": OmegaConf.to_container(t.panel)}
    if "lr_sweep" in t.parts:
        s = t.lr_sweep
        rows = lr_sweep(root, s)
        res["lr_sweep"] = {
            "config": OmegaConf.to_container(s),
            "rows": rows,
            "best": best_lrs(rows, [float(v) for v in s.lrs]),
        }
        plot_sweep(res["lr_sweep"], out / "lr_sweep.png")
    if "ladder" in t.parts:
        from patchtst_hpo.bench.transfer_ladder import ladder

        res["ladder"] = ladder(root, out / "ladder", t.ladder)
    return res


def _lr(v: float) -> str:
    return f"{v:.2g}"


def _mean(rows: list[dict], key: str, par: str, width: int, lr: float) -> float:
    v = [r[key] for r in rows if (r["parametrization"], r["width"], r["lr"]) == (par, width, lr)]
    return float("nan") if not v or any(x is None for x in v) else float(np.mean(v))


def plot_sweep(sw: dict, path: Path) -> None:
    """Training loss against lr, one line per width, a panel per parametrisation (the µP paper's Figure 1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lrs = [float(v) for v in sw["config"]["lrs"]]
    pars = list(sw["best"])
    fig, axes = plt.subplots(1, len(pars), figsize=(5 * len(pars), 3.6), sharey=True, squeeze=False)
    for ax, par in zip(axes[0], pars, strict=True):
        for width in sw["best"][par]["best_lr"]:
            ax.plot(
                lrs,
                [_mean(sw["rows"], "train_loss", par, int(width), lr) for lr in lrs],
                "o-",
                label=f"d={width}",
            )
        ax.set(
            xscale="log",
            xlabel="optimizer.lr",
            title=f"{par}: best lr moves {sw['best'][par]['shift_grid_steps']} step(s)",
        )
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel(f"train loss (last {sw['config']['tail']} steps)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sweep_markdown(sw: dict) -> list[str]:
    """The lr sweep as a table: mean training loss per (parametrisation, width) and lr; the best in bold."""
    c, lrs = sw["config"], [float(v) for v in sw["config"]["lrs"]]
    lines = [
        "",
        f"lr sweep: d<w>_l{c['n_layers']}_h{c['n_heads']}_f<2w>, {c['steps']} AdamW steps (warmup-cosine) at batch "
        f"{c['batch_size']}, seeds {list(c['seeds'])}, mup base width {c['base_width']}. Mean over seeds of the "
        f"training loss of the last {c['tail']} steps (nan: diverged); the best lr per row in bold.",
        "",
        "| parametrisation | width | " + " | ".join(_lr(v) for v in lrs) + " | best lr |",
        "|---|---:|" + "---:|" * (len(lrs) + 1),
    ]
    for par, b in sw["best"].items():
        for width, best in b["best_lr"].items():
            cells = [(lr, _mean(sw["rows"], "train_loss", par, int(width), lr)) for lr in lrs]
            text = [f"**{m:.4f}**" if lr == best else f"{m:.4f}" for lr, m in cells]
            lines.append(f"| {par} | {width} | " + " | ".join(text) + f" | {_lr(best)} |")
    lines.append("")
    for par, b in sw["best"].items():
        lines.append(
            f"- {par}: the best lr moves {b['shift_grid_steps']} grid step(s) (x2 each) across the widths."
        )
    return lines


def transfer_markdown(res: dict) -> list[str]:
    """The section's tables (docs/performance.md "Transfer" quotes them)."""
    lines = sweep_markdown(res["lr_sweep"]) if "lr_sweep" in res else []
    if "ladder" in res:
        from patchtst_hpo.bench.transfer_ladder import ladder_markdown

        lines += ladder_markdown(res["ladder"])
    return lines
