"""The µP parametrisation (models/mup.py): standard unchanged, mup equal to standard at its base shape, the same
counts and FLOPs, and the coordinate check (activation scales flat across widths 64..1024 after AdamW steps)."""

from __future__ import annotations

import functools

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from patchtst_hpo.build import model_config
from patchtst_hpo.models import mup
from patchtst_hpo.models.arch_grid import Arch, PatchTSTConfig, count_params, forward_flops, train_flops
from patchtst_hpo.models.lit_module import LitPatchTST
from patchtst_hpo.models.patchtst import PatchTST

# The losses of `five_steps(standard)` recorded on main before models/mup.py existed (commit be0b71c).
STANDARD_LOSSES = [
    0.7826201915740967,
    0.4419054687023163,
    0.2507045269012451,
    0.15279969573020935,
    0.0870683565735817,
]


def config(**kw) -> PatchTSTConfig:
    base = dict(
        num_features=5,
        context_length=60,
        patch_len=10,
        stride=5,
        num_classes=1,
        d_model=32,
        n_layers=2,
        n_heads=4,
        d_ff=64,
        dropout=0.1,
        mup_base_width=32,
        mup_base_depth=2,
    )
    return PatchTSTConfig(**{**base, **kw})


def lit(
    cfg: PatchTSTConfig, lr: float, weight_decay: float = 1e-2
) -> tuple[LitPatchTST, torch.optim.Optimizer]:
    """The LightningModule and the optimizer its configure_optimizers builds (fused AdamW, as conf/optimizer)."""
    torch.manual_seed(0)
    module = LitPatchTST(
        cfg,
        functools.partial(torch.optim.AdamW, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.95), fused=True),
        None,
    )
    return module, module.configure_optimizers()


def steps(module: LitPatchTST, opt, x: torch.Tensor, y: torch.Tensor, n: int) -> list[float]:
    losses = []
    for _ in range(n):
        loss = module._loss(module(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def batch(n: int, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, context, 5, generator=g), (torch.rand(n, generator=g) > 0.5).float()


def five_steps(cfg: PatchTSTConfig) -> list[float]:
    module, opt = lit(cfg, lr=3e-3)
    return steps(module, opt, *batch(16, 60), 5)


def test_standard_is_unchanged():
    torch.testing.assert_close(five_steps(config()), STANDARD_LOSSES, rtol=1e-5, atol=0)
    module, opt = lit(config(), lr=3e-3)
    # matrices decay; vectors and pos_embed do not
    assert [len(g["params"]) for g in opt.param_groups] == [10, 21]
    assert [g["lr"] for g in opt.param_groups] == [3e-3, 3e-3]


def test_mup_at_its_base_shape_is_standard():
    """At d_model = base width and n_layers = base depth every multiplier is 1: the same losses, bit for bit."""
    same = five_steps(config(parametrization="mup", depth_scaling="sqrt"))
    assert same == five_steps(config())
    assert five_steps(config(parametrization="mup", mup_base_width=16)) != same


@pytest.mark.parametrize("kw", [{}, {"parametrization": "mup", "depth_scaling": "sqrt", "mup_base_width": 8}])
def test_counts_and_flops_do_not_depend_on_the_parametrisation(kw):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    cfg = config(d_model=64, n_layers=3, d_ff=128, **kw)
    arch = Arch(cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.d_ff)
    with torch.device("meta"):
        assert sum(p.numel() for p in PatchTST(cfg).parameters()) == count_params(arch, cfg)
    model = PatchTST(cfg).eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        model(torch.randn(3, 60, 5))
    assert fc.get_total_flops() == 3 * forward_flops(arch, cfg) and train_flops(arch, cfg, 1) > 0


def test_mup_learning_rates_per_role():
    """Width 128 over base 32 (m = 4), 8 layers over base 2 (depth factor 1/2): the lr of each parameter."""
    cfg = config(d_model=128, d_ff=256, n_layers=8, parametrization="mup", depth_scaling="sqrt")
    module, opt = lit(cfg, lr=1e-2)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    names = dict(module.model.named_parameters())
    expect = {
        "layers.3.qkv.weight": 1e-2 / 4 / 2,  # hidden: lr / m, times the depth factor
        "layers.7.ff2.weight": 1e-2 / 4 / 2,
        "layers.0.norm1.weight": 1e-2 / 2,  # a block's vector: depth factor only
        "layers.0.ff1.bias": 1e-2 / 2,
        "patch_embed.weight": 1e-2,  # input layer, readout, final norm: unscaled
        "pos_embed": 1e-2,
        "head.weight": 1e-2,
        "norm.weight": 1e-2,
    }
    for name, lr in expect.items():
        assert lr_of[id(names[name])] == pytest.approx(lr), name
    wd_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert (wd_of[id(names["pos_embed"])], wd_of[id(names["head.weight"])]) == (0.0, 1e-2)
    with pytest.raises(ValueError, match="'extra.weight'.*no µP role"):
        mup.role("extra.weight", torch.empty(3, 3))


def test_model_config_carries_the_parametrisation(cfg_factory):
    cfg = cfg_factory("budget=tiny", "model.parametrization=mup", "model.depth_scaling=sqrt")
    from patchtst_hpo.models.arch_grid import arch_from_cfg, dims_from_cfg

    mc = model_config(cfg, arch_from_cfg(cfg), dims_from_cfg(cfg))
    got = (mc.parametrization, mc.mup_base_width, mc.depth_scaling, mc.mup_base_depth)
    assert got == ("mup", 64, "sqrt", 2)
    assert cfg_factory("budget=tiny").model.parametrization == "standard"  # the default


def activation_scales(cfg: PatchTSTConfig, lr: float = 1e-2, n_steps: int = 4) -> list[float]:
    """Mean |x| of each block's output and of the logits after `n_steps` AdamW steps on one small batch."""
    module, opt = lit(cfg, lr=lr, weight_decay=0.0)
    x, y = batch(8, cfg.context_length)
    steps(module, opt, x, y, n_steps)
    acts: list[float] = []
    hooks = [
        b.register_forward_hook(lambda m, i, o: acts.append(o.abs().mean().item()))
        for b in module.model.layers
    ]
    with torch.no_grad():
        acts.append(module(x).abs().mean().item())
    for h in hooks:
        h.remove()
    return acts


def spread(rows: list[list[float]]) -> list[float]:
    """Per coordinate (block output, logits): largest over smallest scale across the models."""
    return [max(col) / min(col) for col in zip(*rows, strict=True)]


def test_coordinate_check_widths(one_thread):
    """µP's defining property: after a few steps at one lr, activations do not grow with width (64 .. 1024).

    Measured here: standard's block outputs spread ~150x across the widths, mup's under 1.6x."""
    widths = [64, 128, 256, 512, 1024]
    shape = dict(context_length=30, n_layers=2, n_heads=4, dropout=0.0, mup_base_width=64)
    rows = {
        par: [activation_scales(config(d_model=w, d_ff=2 * w, parametrization=par, **shape)) for w in widths]
        for par in ("standard", "mup")
    }
    std, mu = spread(rows["standard"]), spread(rows["mup"])
    assert max(mu) < 2.0, (mu, rows["mup"])
    assert min(std[:-1]) > 10.0, (std, rows["standard"])  # every block output grows with width


def test_coordinate_check_depths(one_thread):
    """depth_scaling=sqrt keeps the last block's output flat from 2 to 16 layers; without it, it grows."""
    shape = dict(
        context_length=30, d_model=64, d_ff=128, dropout=0.0, parametrization="mup", mup_base_width=64
    )
    rows = {
        ds: [activation_scales(config(n_layers=n, depth_scaling=ds, **shape))[-2:] for n in (2, 4, 8, 16)]
        for ds in ("none", "sqrt")
    }
    assert spread(rows["sqrt"])[0] < 2.0, rows
    assert spread(rows["none"])[0] > 4.0, rows
