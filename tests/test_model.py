import pytest
import torch

from patchtst_hpo.models.patchtst import PatchTST, PatchTSTConfig


def tiny(**kw) -> PatchTSTConfig:
    base = dict(
        num_features=5,
        context_length=60,
        patch_len=10,
        stride=5,
        num_classes=1,
        d_model=64,
        n_layers=2,
        n_heads=4,
        d_ff=128,
        dropout=0.0,
    )
    return PatchTSTConfig(**{**base, **kw})


@pytest.mark.parametrize("num_classes", [1, 2, 5])
@pytest.mark.parametrize("revin", [False, True])
def test_output_shape(num_classes, revin):
    model = PatchTST(tiny(num_classes=num_classes, revin=revin))
    out = model(torch.randn(7, 60, 5))
    assert out.shape == (7, num_classes) and torch.isfinite(out).all()


def test_num_patches_and_patch_too_long():
    assert tiny(context_length=80, patch_len=16, stride=8).num_patches == 9
    with pytest.raises(ValueError, match="patch_len=70.*context_length=60"):
        PatchTST(tiny(patch_len=70))
    with pytest.raises(ValueError, match="n_heads=3.*d_model=64"):
        PatchTST(tiny(n_heads=3))


@pytest.mark.parametrize("revin", [False, True])
def test_overfits_one_batch(revin):
    torch.manual_seed(0)
    model = PatchTST(tiny(revin=revin))
    x, y = torch.randn(32, 60, 5), (torch.rand(32) > 0.5).float()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(-1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_revin_makes_output_scale_invariant():
    torch.manual_seed(0)
    model = PatchTST(tiny(revin=True, revin_affine=False)).eval()
    x = torch.randn(4, 60, 5)
    torch.testing.assert_close(model(x), model(x * 10 + 3), atol=1e-4, rtol=1e-4)
