import pytest
import torch

from patchtst_hpo.config import ARCH_NAMES
from patchtst_hpo.errors import ConfigError
from patchtst_hpo.models.arch_grid import (
    Arch,
    Dims,
    budget_candidates,
    candidates,
    count_params,
    dims_from_cfg,
    extremes,
    generate,
    model_config,
)
from patchtst_hpo.models.patchtst import PatchTST
from tests.helpers import run_cli

BUDGETS = ["tiny", "2M", "20M", "200M", "2B"]
DEFAULT_DIMS = Dims(num_features=25, context_length=60, patch_len=10, stride=5, num_classes=1)
OTHER_DIMS = [
    Dims(num_features=5, context_length=60, patch_len=10, stride=5, num_classes=1),
    Dims(num_features=50, context_length=80, patch_len=16, stride=8, num_classes=2),
    Dims(num_features=29, context_length=30, patch_len=6, stride=3, num_classes=3, revin=True),
]


def meta_count(arch: Arch, dims: Dims) -> int:
    with torch.device("meta"):
        model = PatchTST(model_config(arch, dims))
    assert all(p.is_meta for p in model.parameters())  # nothing allocated, even for 2B
    return sum(p.numel() for p in model.parameters())


def test_default_data_dims_match_composed_config(cfg_factory):
    assert dims_from_cfg(cfg_factory()) == DEFAULT_DIMS


@pytest.mark.parametrize(
    "dims",
    # the default dims always; the other shapes (~10 s each on 2 cores) with `make test-all`
    [DEFAULT_DIMS, *(pytest.param(d, marks=pytest.mark.slow) for d in OTHER_DIMS)],
    ids=lambda d: f"F{d.num_features}_C{d.context_length}",
)
def test_formula_equals_meta_model_for_every_candidate(cfg_factory, dims):
    checked = 0
    for budget in BUDGETS:
        cfg = cfg_factory(f"budget={budget}")
        try:
            cands = candidates(cfg.grid, cfg.budget, dims)
        except ConfigError:
            continue  # a shape where this budget has no candidate is tested below
        for c in cands:
            assert c.params == meta_count(c.arch, dims), c.arch.name
            assert abs(c.deviation) <= cfg.budget.tolerance
            checked += 1
    assert checked >= 100


def test_candidate_counts_for_default_dims(cfg_factory):
    counts = {b: len(budget_candidates(cfg_factory(f"budget={b}"))) for b in BUDGETS}
    assert counts == {"tiny": 15, "2M": 75, "20M": 50, "200M": 75, "2B": 15}
    tiny = budget_candidates(cfg_factory("budget=tiny"))
    assert {c.arch.d_model for c in tiny} == {64} and {c.arch.n_layers for c in tiny} == {2, 3}


def test_candidates_sorted_and_extremes(cfg_factory):
    cands = budget_candidates(cfg_factory("budget=2M"))
    assert [c.params for c in cands] == sorted(c.params for c in cands)
    ext = extremes(cands)
    d = [c.arch.d_model for c in cands]
    n_layers = [c.arch.n_layers for c in cands]
    got = {c.arch.d_model for c in ext} | {c.arch.n_layers for c in ext}
    assert {min(d), max(d), min(n_layers), max(n_layers)} <= got
    assert len(set(ext)) == len(ext)


def test_default_arch_of_every_budget_is_a_candidate(cfg_factory):
    for b in BUDGETS:
        cfg = cfg_factory(f"budget={b}")
        assert cfg.arch.name in {c.arch.name for c in budget_candidates(cfg)}, b


def test_arch_group_and_grid_cannot_drift(cfg_factory):
    cfg = cfg_factory()
    grid_names = {a.name for a in generate(cfg.grid)}
    assert len(grid_names) == 10 * 10 * 5 * 2
    small = {a.name for a in generate(cfg_factory("grid=known_answer").grid)}
    assert set(ARCH_NAMES) == grid_names | small and len(ARCH_NAMES) == len(set(ARCH_NAMES))
    arch = cfg_factory("arch=d192_l6_h32_f768").arch
    assert (arch.d_model, arch.n_layers, arch.n_heads, arch.d_ff) == (192, 6, 32, 768)


def test_heads_must_divide_d_model():
    with pytest.raises(ConfigError, match=r"n_heads=5.*d_model=64"):
        Arch(64, 2, 5, 128).check()
    assert all(
        a.d_model % a.n_heads == 0
        for a in generate({"d_model": [96], "n_layers": [2], "n_heads": [2, 5, 32, 64], "d_ff_ratio": [2]})
    )


def test_empty_budget_names_three_nearest(cfg_factory):
    cfg = cfg_factory()
    with pytest.raises(ConfigError) as e:
        candidates(cfg.grid, {"name": "5K", "target": 5000, "tolerance": 0.1}, DEFAULT_DIMS)
    msg = str(e.value)
    assert "5K" in msg and msg.count("(") >= 4 and "d64_l2_h2_f128 (84,545)" in msg


def test_unknown_budget_lists_known_ones():
    r = run_cli(["-m", "patchtst_hpo.candidates", "budget=3M"])
    assert r.returncode != 0
    for b in BUDGETS:
        assert b in r.stderr


def test_cli_prints_table():
    r = run_cli(["-m", "patchtst_hpo.candidates", "budget=tiny", "data.context_length=80"])
    assert r.returncode == 0, r.stderr
    assert "d64_l2_h4_f256" in r.stdout and "context_length=80" in r.stdout
    row = next(line for line in r.stdout.splitlines() if line.startswith("d64_l2_h4_f256 "))
    dims = Dims(25, 80, 10, 5, 1)
    assert f"{count_params(Arch(64, 2, 4, 256), dims):,}" in row


@pytest.mark.parametrize("arch", [Arch(64, 2, 4, 256), Arch(1024, 24, 16, 4096)])
def test_arch_name_round_trips(arch):
    assert Arch.from_name(arch.name) == arch


@pytest.mark.parametrize("bad", ["d64_l2_h4", "d64_l2_h4_f256_x", "auto", "D64_l2_h4_f256"])
def test_arch_from_bad_name_says_the_format(bad):
    with pytest.raises(ConfigError, match="d<d_model>_l<layers>"):
        Arch.from_name(bad)


def test_model_config_is_its_arch_and_dims():
    cfg = model_config(Arch(64, 2, 4, 256), DEFAULT_DIMS, dropout=0.1)
    assert isinstance(cfg, Arch) and isinstance(cfg, Dims) and cfg.num_patches == DEFAULT_DIMS.num_patches
    assert count_params(cfg, cfg) == count_params(Arch(64, 2, 4, 256), DEFAULT_DIMS)
