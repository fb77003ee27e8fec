"""The bench's transfer section (bench/transfer.py): the best-lr rule on known rows, and a tiny real lr sweep."""

from __future__ import annotations

from omegaconf import OmegaConf

from patchtst_hpo.bench import transfer

LRS = [1e-3, 2e-3, 4e-3, 8e-3]


def rows(par: str, width: int, losses: list[float | None], seeds=(0, 1)) -> list[dict]:
    return [
        {"parametrization": par, "width": width, "lr": lr, "seed": s, "train_loss": loss}
        for lr, loss in zip(LRS, losses, strict=True)
        for s in seeds
    ]


def test_best_lr_per_width_and_its_shift_in_grid_steps():
    data = [
        *rows("standard", 16, [0.70, 0.68, 0.69, 0.71]),  # best 2e-3
        *rows("standard", 64, [0.66, 0.67, 0.70, None]),  # best 1e-3; 8e-3 diverged
        *rows("mup", 16, [0.70, 0.68, 0.69, 0.71]),
        *rows("mup", 64, [0.69, 0.70, 0.67, 0.68]),  # best 4e-3
    ]
    best = transfer.best_lrs(data, LRS)
    assert best["standard"] == {"best_lr": {16: 2e-3, 64: 1e-3}, "shift_grid_steps": 1}
    assert best["mup"] == {"best_lr": {16: 2e-3, 64: 4e-3}, "shift_grid_steps": 1}
    diverged = transfer.best_lrs(rows("mup", 8, [None, None, 0.9, None]), LRS)
    assert diverged["mup"]["best_lr"] == {8: 4e-3}  # a diverged lr never wins


def test_tiny_lr_sweep_on_the_planted_panel(tmp_path, one_thread):
    root = transfer.make_panel(tmp_path / "ka", OmegaConf.create({"symbols": 3, "days": 400, "seed": 0}))
    s = OmegaConf.create(
        {
            "parametrizations": ["standard", "mup"],
            "widths": [8, 16],
            "n_layers": 1,
            "n_heads": 1,
            "base_width": 8,
            "lrs": [1e-3, 1e-2],
            "seeds": [0],
            "steps": 3,
            "tail": 2,
            "batch_size": 32,
        }
    )
    got = transfer.lr_sweep(root, s)
    assert len(got) == 2 * 2 * 2 and all(r["train_loss"] > 0 for r in got)
    by = {(r["parametrization"], r["width"], r["lr"]): r["train_loss"] for r in got}
    assert by[("standard", 8, 1e-2)] == by[("mup", 8, 1e-2)]  # at the base width mup is standard
    assert by[("standard", 16, 1e-2)] != by[("mup", 16, 1e-2)]
    res = {"config": OmegaConf.to_container(s), "rows": got, "best": transfer.best_lrs(got, [1e-3, 1e-2])}
    text = "\n".join(transfer.sweep_markdown(res))
    assert "| mup | 16 |" in text and "grid step(s)" in text
