"""The training losses of LitPatchTST (BCE, pos_weight, focal, 2-class cross-entropy) against closed forms."""

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss

from patchtst_hpo.models.arch_grid import Arch, Dims, model_config
from patchtst_hpo.models.lit_module import LitPatchTST

DIMS = Dims(num_features=3, context_length=20, patch_len=5, stride=5, num_classes=1)


def lit(loss: str = "bce", pos_weight: float | None = None, gamma: float = 2.0, classes: int = 1):
    dims = Dims(**{**vars(DIMS), "num_classes": classes})
    return LitPatchTST(model_config(Arch(8, 1, 2, 16), dims), torch.optim.SGD, None, loss, pos_weight, gamma)


def _batch(seed: int, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, generator=g) * 3, (torch.rand(n, generator=g) < 0.3).float()


def _np(t: torch.Tensor) -> np.ndarray:
    return t.double().numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bce_is_sklearn_log_loss(seed):
    logits, y = _batch(seed)
    p = 1 / (1 + np.exp(-_np(logits[:, 0])))
    assert lit()._loss(logits, y).item() == pytest.approx(log_loss(_np(y), p), rel=1e-5)


@pytest.mark.parametrize("pos_weight", [1.0, 3.0, 0.5])
def test_pos_weight_scales_the_positive_term(pos_weight):
    logits, y = _batch(4)
    p, yy = 1 / (1 + np.exp(-_np(logits[:, 0]))), _np(y)
    expected = -np.mean(pos_weight * yy * np.log(p) + (1 - yy) * np.log(1 - p))
    assert lit(pos_weight=pos_weight)._loss(logits, y).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 5.0])
def test_focal_loss_matches_its_formula(gamma):
    logits, y = _batch(5)
    p, yy = 1 / (1 + np.exp(-_np(logits[:, 0]))), _np(y)
    pt = np.where(yy > 0.5, p, 1 - p)
    expected = np.mean(-((1 - pt) ** gamma) * np.log(pt))
    got = lit("focal", gamma=gamma)._loss(logits, y).item()
    assert got == pytest.approx(expected, rel=1e-5)
    if gamma == 0.0:  # focal with gamma 0 is BCE
        assert got == pytest.approx(lit()._loss(logits, y).item(), rel=1e-6)


def test_focal_down_weights_easy_examples():
    y = torch.tensor([1.0, 1.0])
    easy, hard = torch.tensor([[6.0], [6.0]]), torch.tensor([[-1.0], [-1.0]])
    bce, focal = lit(), lit("focal", gamma=2.0)
    assert focal._loss(easy, y) / bce._loss(easy, y) < focal._loss(hard, y) / bce._loss(hard, y) < 1


@pytest.mark.parametrize("seed", [0, 1])
def test_two_classes_use_cross_entropy(seed):
    g = torch.Generator().manual_seed(seed)
    logits, y = torch.randn(50, 2, generator=g), (torch.rand(50, generator=g) < 0.5).float()
    probs = torch.softmax(logits.double(), -1).numpy()
    assert lit(classes=2)._loss(logits, y).item() == pytest.approx(log_loss(_np(y), probs), rel=1e-5)


def test_library_noise_is_filtered_in_any_process_that_imports_the_module():
    """A joblib/submitit worker imports lit_module (to unpickle LitPatchTST), never train.py's module body."""
    import subprocess
    import sys

    code = (
        "import warnings, patchtst_hpo.models.lit_module\n"
        "warnings.warn('You have overridden `transfer_batch_to_device` in `LightningModule`')\n"
        "warnings.warn(\"The 'train_dataloader' does not have many workers which may be a bottleneck.\")\n"
        "warnings.warn('a real warning')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "a real warning" in r.stderr
    assert "transfer_batch_to_device" not in r.stderr and "many workers" not in r.stderr
