"""The ``adamp`` and ``sgdp`` optimizers: one step against a hand computation of the paper's
projection, and the slower norm growth of scale-invariant weights that motivates them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from molgraph.train.optim import OPTIMIZERS, build_optimizer


def _orthogonal_case() -> tuple[np.ndarray, np.ndarray]:
    """A 2x3 weight and a gradient orthogonal to each of its rows (a scale-invariant weight's gradient)."""
    w = np.array([[1.0, 2.0, 2.0], [0.0, 3.0, -4.0]])
    g = np.array([[2.0, -1.0, 0.0], [1.0, 0.8, 0.6]])
    assert np.allclose((w * g).sum(1), 0.0)
    return w, g


def _project(w: np.ndarray, u: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Remove from each row of ``u`` its component along the same row of ``w`` (the paper's Π_w)."""
    wn = w / (np.linalg.norm(w, axis=1, keepdims=True) + eps)
    return u - wn * (wn * u).sum(1, keepdims=True)


def _step(name: str, w: np.ndarray, g: np.ndarray, **kwargs) -> np.ndarray:
    p = nn.Parameter(torch.tensor(w))
    opt = build_optimizer(name, [p], **kwargs)
    p.grad = torch.tensor(g)
    opt.step()
    return p.detach().numpy()


def test_registered():
    assert {"adamp", "sgdp"} <= set(OPTIMIZERS)


def test_adamp_first_step_equals_hand_computation():
    w, g = _orthogonal_case()
    lr, b1, b2, eps, wd, wd_ratio = 0.1, 0.9, 0.999, 1e-8, 0.01, 0.1
    m, v = (1 - b1) * g, (1 - b2) * g * g
    update = m / (np.sqrt(v) / np.sqrt(1 - b2) + eps)
    expected = w * (1 - lr * wd * wd_ratio) - lr / (1 - b1) * _project(w, update)
    np.testing.assert_allclose(_step("adamp", w, g, lr=lr, weight_decay=wd), expected, rtol=1e-12, atol=1e-12)
    # the projected step is orthogonal to each row: it cannot change the norms to first order
    adam = _step("adam", w, g, lr=lr)
    assert not np.allclose(adam, expected)


def test_adamp_equals_adam_when_the_gradient_is_not_orthogonal():
    w, _ = _orthogonal_case()
    g = w * np.array([[0.5], [-0.2]]) + 0.01  # nearly parallel to the rows: not scale-invariant
    np.testing.assert_allclose(_step("adamp", w, g, lr=0.1), _step("adam", w, g, lr=0.1), rtol=1e-12)


def test_sgdp_first_step_equals_hand_computation():
    w, g = _orthogonal_case()
    lr, wd, mom, wd_ratio = 0.05, 0.01, 0.9, 0.1
    # first step: momentum buffer = g; decay scaled by wd_ratio / (1 - momentum), as the authors' SGDP
    expected = w * (1 - lr * wd * wd_ratio / (1 - mom)) - lr * _project(w, g)
    np.testing.assert_allclose(_step("sgdp", w, g, lr=lr, weight_decay=wd), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,baseline,lr", [("adamp", "adam", 1e-2), ("sgdp", "sgd", 0.1)])
def test_scale_invariant_weight_norm_grows_less(name, baseline, lr):
    """A bias-free linear layer followed by LayerNorm: its output does not change with the weight's
    scale, so the gradient is orthogonal to the weight and every plain step grows the norm."""

    def final_norm(opt_name: str) -> float:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(8, 16, bias=False), nn.LayerNorm(16, elementwise_affine=False), nn.Linear(16, 1))
        w0 = net[0].weight.norm().item()
        opt = build_optimizer(opt_name, net.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(256, 8, generator=gen)
        y = torch.randn(256, 1, generator=gen)
        for _ in range(200):
            opt.zero_grad()
            nn.functional.mse_loss(net(x), y).backward()
            opt.step()
        return net[0].weight.norm().item() / w0

    plain, projected = final_norm(baseline), final_norm(name)
    assert plain > 1.05  # the slowdown the paper describes: the plain optimizer inflates the norm
    assert projected < 1.0 + 0.25 * (plain - 1.0)
