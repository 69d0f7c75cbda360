"""Domain-adaptation losses: docstring examples, gradient reversal, DANN's loss and accuracy, CORAL and MMD math."""

from __future__ import annotations

import doctest
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import one_torch_thread
from transferkit.modules import alignment, domain_adversarial
from transferkit.modules.alignment import CoralLoss, MultiKernelMMD
from transferkit.modules.domain_adversarial import (
    DomainAdversarialLoss,
    DomainDiscriminator,
    GradientReverse,
    dann_coefficient,
    reverse_gradient,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@pytest.mark.parametrize("module", [domain_adversarial, alignment], ids=lambda m: m.__name__)
def test_docstring_examples_run(module) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_gradient_reverse_is_identity_forward_and_flips_and_scales_gradients() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    weights = torch.randn(4, 3)
    layer = GradientReverse(coefficient=0.5)
    y = layer(x)
    assert torch.equal(y, x)
    (y * weights).sum().backward()
    assert torch.allclose(x.grad, -0.5 * weights)
    x.grad = None
    (layer(x, coefficient=2.0) * weights).sum().backward()  # a per-call coefficient overrides the default
    assert torch.allclose(x.grad, -2.0 * weights)
    x.grad = None
    (reverse_gradient(x, 0.0) * weights).sum().backward()  # λ = 0: features get no domain gradient
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_dann_schedule_rises_from_zero_to_one() -> None:
    values = [dann_coefficient(p / 10) for p in range(11)]
    assert values[0] == 0.0 and 0.9999 < values[-1] < 1.0
    assert all(a < b for a, b in zip(values[:-1], values[1:], strict=True))
    assert dann_coefficient(0.5) == pytest.approx(2 / (1 + torch.e ** -5) - 1)
    with pytest.raises(ValueError, match="progress"):
        dann_coefficient(1.5)


def test_domain_adversarial_loss_is_balanced_bce_and_reverses_the_feature_gradient() -> None:
    torch.manual_seed(0)
    discriminator = DomainDiscriminator(in_features=5, hidden_size=8, dropout=0.0)
    f_s, f_t = torch.randn(6, 5, requires_grad=True), torch.randn(3, 5, requires_grad=True)
    output = DomainAdversarialLoss(discriminator)(f_s, f_t, coefficient=0.3)
    d_s, d_t = discriminator(f_s), discriminator(f_t)
    expected = 0.5 * (F.binary_cross_entropy_with_logits(d_s, torch.ones(6))
                      + F.binary_cross_entropy_with_logits(d_t, torch.zeros(3)))
    assert output.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    plain_s, plain_t = torch.autograd.grad(expected, [f_s, f_t])
    output.loss.backward()
    assert torch.allclose(f_s.grad, -0.3 * plain_s, atol=1e-7) and torch.allclose(f_t.grad, -0.3 * plain_t, atol=1e-7)
    assert all(p.grad is not None for p in discriminator.parameters())  # the discriminator itself descends
    assert not output.accuracy.requires_grad and output.accuracy.dim() == 0


def test_discriminator_accuracy_is_reported() -> None:
    torch.manual_seed(0)
    adversarial = DomainAdversarialLoss(DomainDiscriminator(in_features=4, hidden_size=16, dropout=0.0))
    optimizer = torch.optim.Adam(adversarial.parameters(), lr=1e-2)
    f_s, f_t = torch.randn(32, 4) + 2.0, torch.randn(24, 4) - 2.0  # easy to tell apart
    first = adversarial(f_s, f_t)
    for _ in range(100):
        output = adversarial(f_s, f_t)
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
    last = adversarial(f_s, f_t)
    loss, accuracy = last  # a NamedTuple: unpacks, and names its fields
    assert last.accuracy is accuracy and loss.item() < first.loss.item()
    assert float(accuracy) == 1.0
    confused = adversarial(torch.zeros(8, 4), torch.zeros(8, 4)).accuracy  # same features: one side is always wrong
    assert float(confused) == 0.5


def test_coral_matches_the_paper_formula_and_sees_covariance_not_means() -> None:
    torch.manual_seed(0)
    f_s, f_t = torch.randn(50, 6), torch.randn(30, 6) * torch.linspace(0.5, 2.0, 6)
    coral = CoralLoss()
    expected = (torch.cov(f_s.T) - torch.cov(f_t.T)).pow(2).sum() / (4 * 6**2)  # torch.cov is unbiased
    assert coral(f_s, f_t).item() == pytest.approx(expected.item(), rel=1e-5)
    assert coral(f_s, f_s).item() == 0.0
    assert coral(f_s, f_s + 5.0).item() == pytest.approx(0.0, abs=1e-6)  # second-order only: a shift is invisible
    assert coral(f_s, 2.0 * f_s).item() > 0.1
    with pytest.raises(ValueError, match="at least 2"):
        coral(f_s, f_t[:1])


def reference_mmd(f_s: torch.Tensor, f_t: torch.Tensor, multipliers: tuple[float, ...], unbiased: bool) -> float:
    """MMD^2 written out with Python loops over pairs (Gretton et al. 2012), for parity."""
    points = torch.cat([f_s, f_t]).double()
    n = len(points)
    distances = [[float((points[i] - points[j]).pow(2).sum()) for j in range(n)] for i in range(n)]
    base = sum(distances[i][j] for i in range(n) for j in range(n) if i != j) / (n * (n - 1))

    def k(i: int, j: int) -> float:
        return sum(float(torch.exp(torch.tensor(-distances[i][j] / (2 * c * base)))) for c in multipliers) / len(multipliers)

    source, target = range(len(f_s)), range(len(f_s), n)

    def within(rows: range) -> float:
        pairs = [(i, j) for i in rows for j in rows if i != j or not unbiased]
        return sum(k(i, j) for i, j in pairs) / len(pairs)

    across = sum(k(i, j) for i in source for j in target) / (len(source) * len(target))
    return within(source) + within(target) - 2 * across


@pytest.mark.parametrize("unbiased", [True, False])
def test_mmd_matches_a_loop_reference_with_unequal_batches(unbiased: bool) -> None:
    torch.manual_seed(0)
    f_s, f_t = torch.randn(7, 3), torch.randn(5, 3) + 0.5
    mmd = MultiKernelMMD(multipliers=(0.5, 1.0, 2.0), unbiased=unbiased)
    assert mmd(f_s, f_t).item() == pytest.approx(reference_mmd(f_s, f_t, (0.5, 1.0, 2.0), unbiased), rel=1e-4)


@pytest.mark.parametrize("base", ["mean", "median"])
def test_mmd_is_near_zero_for_one_distribution_and_clearly_positive_under_a_shift(base: str) -> None:
    torch.manual_seed(0)
    mmd = MultiKernelMMD(base=base)
    same = mmd(torch.randn(200, 8), torch.randn(150, 8)).item()
    shifted = mmd(torch.randn(200, 8), torch.randn(150, 8) + 1.0).item()
    assert abs(same) < 0.01 and shifted > 0.1 and shifted > 20 * abs(same)
    biased = MultiKernelMMD(base=base, unbiased=False)
    f_s = torch.randn(20, 8)
    assert biased(f_s, f_s).item() == pytest.approx(0.0, abs=1e-6)  # the V-statistic of identical samples
    assert biased(f_s, torch.randn(1, 8)).item() >= 0.0  # a single target row is fine when biased


def test_mmd_gradient_moves_target_features_towards_the_source() -> None:
    torch.manual_seed(0)
    f_s, f_t = torch.randn(64, 2), (torch.randn(48, 2) + torch.tensor([3.0, 0.0])).requires_grad_()
    MultiKernelMMD()(f_s, f_t).backward()
    assert f_t.grad[:, 0].mean() > 0  # descending the gradient lowers x, towards the source mean


def test_alignment_losses_reject_bad_shapes() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        MultiKernelMMD()(torch.randn(1, 3), torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"\(n_s, dim\)"):
        CoralLoss()(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="multipliers"):
        MultiKernelMMD(multipliers=())
