"""The GPU path, checked on CPU: device-first model build, memory arithmetic, FLOPs, compile switch,
checkpoint policy, metrics fields and logger=none."""

import json

import lightning as L
import pytest
import torch
from lightning.pytorch.strategies import SingleDeviceStrategy
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from patchtst_hpo.build import build_model, build_trainer, model_config
from patchtst_hpo.data.datamodule import WindowDataModule
from patchtst_hpo.devices import (
    RESERVED_BYTES,
    STATE_BYTES_PER_PARAM,
    activation_bytes_per_sample,
    check_memory,
    fits,
    training_bytes,
)
from patchtst_hpo.errors import ConfigError
from patchtst_hpo.models.arch_grid import (
    Arch,
    arch_from_cfg,
    count_params,
    dims_from_cfg,
    forward_flops,
    train_flops,
)
from patchtst_hpo.models.patchtst import PatchTST
from patchtst_hpo.train import train
from tests.helpers import check, run_cli

FAST = [
    "budget=tiny",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "callbacks.progress=null",
]
H100_FREE = int(79.1 * 2**30)  # what torch.cuda.mem_get_info reports free on an idle 80 GB H100


class CPUBytes(TorchDispatchMode):
    """Counts the bytes of new CPU storages created by any op run under it (each storage once)."""

    def __init__(self):
        super().__init__()
        self.bytes, self._seen = 0, set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                key = t.untyped_storage().data_ptr()
                if key not in self._seen:
                    self._seen.add(key)
                    self.bytes += t.untyped_storage().nbytes()
        return out


def _trainer(device: str) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        strategy=SingleDeviceStrategy(device=torch.device(device)),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )


def test_model_is_built_on_the_trainers_device_without_a_cpu_copy(cfg_factory):
    # 200M (d1024_l16_h16_f4096, ~800 MB of fp32 weights): built through train.build_model under a real
    # Trainer whose device is `meta`, it allocates no CPU storage at all -> the build follows the trainer's
    # device (trainer.init_module) and never makes a CPU copy first. On a GPU the same path yields cuda tensors.
    cfg = cfg_factory("budget=200M")
    arch, dims = arch_from_cfg(cfg), dims_from_cfg(cfg)
    with CPUBytes() as counted:
        lit = build_model(cfg, arch, dims, _trainer("meta"))
    params = list(lit.parameters())
    assert sum(p.numel() for p in params) == count_params(arch, dims) > 150_000_000
    assert {p.device.type for p in params} == {"meta"}
    assert counted.bytes < 2**20, counted.bytes


def test_cpu_build_allocates_the_weights_once(cfg_factory):
    # On a CPU trainer the same path allocates the parameters exactly once (no second full copy).
    cfg = cfg_factory("budget=2M")
    arch, dims = arch_from_cfg(cfg), dims_from_cfg(cfg)
    with CPUBytes() as counted:
        lit = build_model(cfg, arch, dims, _trainer("cpu"))
    weight_bytes = sum(p.numel() * p.element_size() for p in lit.parameters())
    assert weight_bytes <= counted.bytes < 1.1 * weight_bytes


def test_training_bytes_arithmetic_and_2b_fits_an_80gb_gpu(cfg_factory):
    cfg = cfg_factory("budget=2B", "trainer=gpu")  # d2048_l32_h32_f8192, gpu_batch_size 512
    arch, dims, batch = arch_from_cfg(cfg), dims_from_cfg(cfg), int(cfg.data.batch_size)
    assert batch == 512 and str(cfg.trainer.precision) == "bf16-mixed"
    n = count_params(arch, dims)
    assert n == 1_612_027_905
    # activations per sample: 11 patches, d=2048, f=8192, 32 heads, 32 layers, patches 10 x 25 features
    p, d, f, h, L_ = 11, 2048, 8192, 32, 32
    stream = L_ * 4 * p * d + 3 * p * d + p * 10 * 25
    matmul = L_ * (6 * p * d + 2 * p * f + 2 * h * p * p)
    assert activation_bytes_per_sample(arch, dims, "bf16-mixed") == 4 * stream + 2 * matmul
    need = training_bytes(arch, dims, batch, "bf16-mixed")
    assert need == n * 18 + batch * (4 * stream + 2 * matmul) + RESERVED_BYTES
    assert 40 * 2**30 < need < 50 * 2**30
    assert fits(need, H100_FREE) and not fits(need, 32 * 2**30) and fits(need, None)
    # precision changes the state bytes: bf16-true halves them, fp32 has no autocast copy
    assert STATE_BYTES_PER_PARAM["bf16-true"] == 8 and STATE_BYTES_PER_PARAM["32-true"] == 16
    assert training_bytes(arch, dims, 1, "bf16-true") < training_bytes(arch, dims, 1, "32-true")
    with pytest.raises(ConfigError, match="trainer.precision='transformer-engine'"):
        training_bytes(arch, dims, 1, "transformer-engine")


def test_2b_is_refused_on_this_cpu_before_allocating(cfg_factory):
    cfg = cfg_factory("budget=2B")
    need = training_bytes(arch_from_cfg(cfg), dims_from_cfg(cfg), 128, "32-true")
    from patchtst_hpo.devices import available_bytes

    if fits(need, available_bytes("cpu")):
        pytest.skip("this machine could hold the 2B training state")
    with pytest.raises(ConfigError, match=r"needs about .* GiB.*data.batch_size=128.*trainer=fsdp"):
        check_memory(cfg)


def test_forward_flops_match_torch_flop_counter():
    # FlopCounterMode counts matmuls as 2*m*n*k: the same convention as forward_flops. The math SDPA kernel
    # decomposes attention into bmm's it can count (it has no formula for the fused CPU kernel).
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from patchtst_hpo.models.arch_grid import Dims
    from patchtst_hpo.models.arch_grid import model_config as grid_model_config

    dims = Dims(num_features=5, context_length=60, patch_len=10, stride=5, num_classes=1)
    arch = Arch(64, 2, 4, 128)
    model = PatchTST(grid_model_config(arch, dims)).eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        model(torch.randn(3, 60, 5))
    assert fc.get_total_flops() == 3 * forward_flops(arch, dims)
    assert train_flops(arch, dims, 10) == 30 * forward_flops(arch, dims)


def test_logger_none_with_default_callbacks_and_metrics_fields(cfg_factory, data_dir, tmp_path):
    # conf/callbacks/default has a LearningRateMonitor, which needs a logger: dropped, the run completes.
    cfg = cfg_factory(*FAST, "logger=none", f"paths.data_dir={data_dir}", f"paths.output_dir={tmp_path}")
    assert cfg.callbacks.lr_monitor is not None
    res = train(cfg)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["samples_seen"] == res["samples_seen"] == 2 * 3 * 128  # 2 epochs x 3 batches x batch 128
    assert m["tokens_seen"] == m["samples_seen"] * 11
    arch, dims = arch_from_cfg(cfg), dims_from_cfg(cfg)
    assert m["train_flops"] == train_flops(arch, dims, m["samples_seen"])
    assert m["compiled"] is False
    ckpts = sorted((tmp_path / "checkpoints").iterdir())
    assert [c.name for c in ckpts] == ["epoch002.ckpt", "last.ckpt"]  # single run: full state + last (from 1)
    assert m["checkpoint_bytes"] == sum(c.stat().st_size for c in ckpts)
    assert "optimizer_states" in torch.load(ckpts[1], map_location="cpu", weights_only=False)


def test_sweep_trial_keeps_best_weights_only_and_validates_from_it(cfg_factory, data_dir, tmp_path):
    # trial.number is what the budget_optuna sweeper sets per trial: the checkpoint policy follows it.
    cfg = cfg_factory(
        *FAST, "trial.number=3", "logger=none", f"paths.data_dir={data_dir}", f"paths.output_dir={tmp_path}"
    )
    res = train(cfg)
    ckpts = list((tmp_path / "checkpoints").iterdir())
    assert len(ckpts) == 1 and ckpts[0].name.startswith("epoch")
    state = torch.load(ckpts[0], map_location="cpu", weights_only=False)
    assert "optimizer_states" not in state and "state_dict" in state
    assert res["checkpoint_bytes"] == ckpts[0].stat().st_size
    assert res["best_checkpoint"] == str(ckpts[0]) and res["best_epoch"] in (1, 2)
    # a weights-only checkpoint reloads for evaluation (what train does when the best epoch is not the last,
    # and what the report's confirmation relies on): the same val metrics as the run reported for that epoch
    trainer = build_trainer(cfg)
    lit = build_model(cfg, arch_from_cfg(cfg), dims_from_cfg(cfg), trainer)
    dm = WindowDataModule(cfg.data, cfg.task, int(cfg.seed))
    trainer.validate(lit, datamodule=dm, ckpt_path=str(ckpts[0]), verbose=False)
    assert lit.results["val"]["auc"] == pytest.approx(res["val"]["auc"], abs=1e-6)


_PROBE = """
import sys, torch
from patchtst_hpo.config import compose
from patchtst_hpo.train import train
import torch._dynamo.utils as du
cfg = compose("train", sys.argv[1:])
res = train(cfg)
print("GRAPHS", du.counters["stats"]["unique_graphs"], "INDUCTOR", "torch._inductor.compile_fx" in sys.modules,
      "COMPILED", res["compiled"])
"""


def _probe(tmp_path, data_dir, *extra):
    r = run_cli(
        [
            "-c",
            _PROBE,
            *FAST,
            "logger=none",
            f"paths.data_dir={data_dir}",
            f"paths.output_dir={tmp_path}",
            *extra,
        ]
    )
    check(r)
    return r.stdout.strip().splitlines()[-1]


def test_default_run_compiles_nothing(tmp_path, data_dir):
    # Lightning 2.6 imports torch._dynamo itself (lightning/fabric/wrappers.py), so the observable is that
    # nothing is compiled: no dynamo graph, inductor's compiler never loaded.
    assert _probe(tmp_path, data_dir) == "GRAPHS 0 INDUCTOR False COMPILED False"


@pytest.mark.slow
def test_compile_true_compiles_the_model(tmp_path, data_dir):
    line = _probe(tmp_path, data_dir, "trainer.compile=true")
    graphs = int(line.split()[1])
    assert graphs >= 1 and line.endswith("INDUCTOR True COMPILED True"), line


def test_model_config_is_the_grid_one(cfg_factory):
    cfg = cfg_factory("budget=tiny")
    mc = model_config(cfg, arch_from_cfg(cfg), dims_from_cfg(cfg))
    assert mc.num_patches == 11 and mc.d_model == 64


def test_gpu_check_script_parses_and_is_shellcheck_clean():
    import shutil
    import subprocess

    from patchtst_hpo.paths import REPO_DIR

    script = REPO_DIR / "scripts" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    r = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


@pytest.mark.slow
def test_gpu_check_script_cpu_mode_prints_the_table(tmp_path, data_dir):
    # GPU_CHECK_CPU=1: tiny CPU versions of every step; checks the plumbing and the table, not the speed.
    import os
    import subprocess
    import sys

    from patchtst_hpo.paths import REPO_DIR

    env = {**os.environ, "GPU_CHECK_CPU": "1", "PYTHON": sys.executable, "GPU_CHECK_SECONDS": "900"}
    r = subprocess.run(
        ["bash", "scripts/gpu_check.sh", str(tmp_path / "gc"), f"paths.data_dir={data_dir}"],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    check(r)
    table = (tmp_path / "gc" / "table.md").read_text()
    assert "| 2B 1 epoch: process start to metrics.json s (ok) |" in table
    assert "200M sweep: checkpoint bytes per trial" in table
