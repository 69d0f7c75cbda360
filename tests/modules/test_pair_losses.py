"""The pair losses: their formulas against a direct computation, what they push, and bad shapes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from transferkit.modules.contrastive import ContrastiveLoss, CosineSimilarityLoss


def pairs(seed: int = 0, batch: int = 12, dim: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    u, v = torch.randn(batch, dim, generator=generator), torch.randn(batch, dim, generator=generator)
    return u, v, torch.tensor([1.0, 0.0, 0.5] * (batch // 3))


def test_cosine_similarity_loss_is_the_mean_squared_error_of_the_cosine_against_the_target() -> None:
    u, v, target = pairs()
    cosine = (u * v).sum(dim=1) / (u.norm(dim=1) * v.norm(dim=1))
    expected = ((cosine - target) ** 2).mean()
    assert float(CosineSimilarityLoss()(u, v, target)) == pytest.approx(float(expected), rel=1e-5)


def test_cosine_similarity_loss_ignores_the_embeddings_lengths_and_is_zero_at_the_target() -> None:
    u, v, target = pairs(seed=1)
    loss = CosineSimilarityLoss()
    assert float(loss(3.0 * u, 0.1 * v, target)) == pytest.approx(float(loss(u, v, target)), rel=1e-5)
    assert float(loss(u, u, torch.ones(len(u)))) == pytest.approx(0.0, abs=1e-6)


def test_contrastive_loss_matches_hadsell_et_al_on_the_cosine_distance() -> None:
    u, v, target = pairs(seed=2)
    distance = 1.0 - F.cosine_similarity(u, v, dim=1)
    expected = 0.5 * (target * distance**2 + (1 - target) * torch.clamp(0.3 - distance, min=0) ** 2)
    assert float(ContrastiveLoss(margin=0.3)(u, v, target)) == pytest.approx(float(expected.mean()), rel=1e-5)


def test_contrastive_loss_leaves_dissimilar_pairs_beyond_the_margin_alone() -> None:
    """A dissimilar pair farther apart than the margin (orthogonal: d = 1 > m = 0.5) gives no loss and no gradient;
    so does an opposite pair (cos = -1), which the squared-error loss still pulls back towards orthogonal."""
    u = torch.tensor([[1.0, 0.0]], requires_grad=True)
    v = torch.tensor([[0.0, 1.0]])
    loss = ContrastiveLoss(margin=0.5)(u, v, torch.tensor([0.0]))
    loss.backward()
    assert float(loss.detach()) == 0.0 and float(u.grad.abs().sum()) == 0.0
    w = torch.tensor([[-1.0, 0.0]])  # cos = -1: the cosine loss pulls it back towards 0, the margin loss does not
    assert float(CosineSimilarityLoss()(u.detach(), w, torch.tensor([0.0]))) == pytest.approx(1.0)
    assert float(ContrastiveLoss(margin=0.5)(u.detach(), w, torch.tensor([0.0]))) == 0.0


def test_gradient_descent_on_the_cosine_loss_pulls_similar_pairs_together_and_pushes_others_to_orthogonal() -> None:
    torch.manual_seed(0)
    u = torch.randn(6, 4, requires_grad=True)
    v = torch.randn(6, 4)
    target = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    optimizer = torch.optim.Adam([u], lr=0.05)
    for _ in range(300):
        optimizer.zero_grad()
        CosineSimilarityLoss()(u, v, target).backward()
        optimizer.step()
    cosine = F.cosine_similarity(u.detach(), v, dim=1)
    assert cosine[:3].min() > 0.95 and cosine[3:].abs().max() < 0.05, cosine


@pytest.mark.parametrize("loss", [CosineSimilarityLoss(), ContrastiveLoss()], ids=["cosine", "contrastive"])
def test_bad_shapes_are_refused(loss: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match=r"\(B, dim\)"):
        loss(torch.zeros(4, 3), torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(ValueError, match=r"\(B,\) target"):
        loss(torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(3))


def test_the_margin_must_be_positive() -> None:
    with pytest.raises(ValueError, match="margin"):
        ContrastiveLoss(margin=0.0)
