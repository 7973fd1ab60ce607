"""Penalties, clipping and spectral norm against closed forms."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gan_modules.networks import MLPDiscriminator
from gan_modules.networks.common import apply_spectral_norm
from gan_modules.regularizers import (
    DRAGANPenalty,
    GradientPenalty,
    R1Penalty,
    clip_weights_,
    dragan_penalty,
    gradient_penalty,
    r1_penalty,
)


def linear_critic(weight: torch.Tensor) -> nn.Module:
    """D(x) = <w, flatten(x)> + b: its input gradient is w everywhere."""
    layer = nn.Linear(weight.numel(), 1)
    with torch.no_grad():
        layer.weight.copy_(weight.reshape(1, -1))
        layer.bias.fill_(0.3)
    return nn.Sequential(nn.Flatten(), layer, nn.Flatten(0))


def data(shape=(8, 1, 2, 2)):
    return torch.randn(*shape), torch.randn(*shape)


def test_gradient_penalty_is_zero_for_a_unit_norm_linear_critic():
    w = torch.randn(4)
    real, fake = data()
    assert_close(gradient_penalty(linear_critic(w / w.norm()), real, fake), torch.tensor(0.0))


@pytest.mark.parametrize("norm", [0.5, 2.0, 3.0])
def test_penalties_match_closed_forms_for_a_linear_critic(norm):
    w = torch.randn(4)
    critic = linear_critic(w / w.norm() * norm)
    real, fake = data()
    assert_close(gradient_penalty(critic, real, fake), torch.tensor((norm - 1) ** 2))
    assert_close(dragan_penalty(critic, real), torch.tensor((norm - 1) ** 2))
    assert_close(r1_penalty(critic, real), torch.tensor(norm**2))
    assert_close(gradient_penalty(critic, real, fake, target=0.0), torch.tensor(norm**2))


def test_gradient_penalty_gradient_reaches_the_critic_weights():
    w = torch.tensor([3.0, 4.0, 0.0, 0.0])  # norm 5
    critic = linear_critic(w)
    real, fake = data()
    gradient_penalty(critic, real, fake).backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    assert_close(critic[1].weight.grad.view(-1), 2 * 4 * w / 5)


def test_penalty_has_finite_gradient_where_the_input_gradient_is_zero():
    critic = linear_critic(torch.zeros(4))
    real, fake = data()
    gradient_penalty(critic, real, fake).backward()
    assert torch.isfinite(critic[1].weight.grad).all()


def test_penalty_scaling_for_mixed_precision_gives_the_same_value():
    critic = linear_critic(torch.tensor([1.0, 2.0, 2.0, 0.0]))  # norm 3
    real, fake = data()
    alpha = torch.rand(8, 1, 1, 1)
    plain = gradient_penalty(critic, real, fake, alpha=alpha)
    scaled = gradient_penalty(critic, real, fake, alpha=alpha, scale=torch.tensor(65536.0))
    assert_close(scaled, plain)


def test_penalty_classes_validate_and_weight():
    assert GradientPenalty().weight == 10.0
    assert R1Penalty(gamma=10.0, interval=16).weight == 5.0
    with pytest.raises(ValueError, match="weight=-1"):
        GradientPenalty(weight=-1)
    with pytest.raises(ValueError, match="interval"):
        DRAGANPenalty(interval=0)


def test_weight_clipping_bounds_every_parameter():
    net = MLPDiscriminator((2,), hidden=(16,))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    clip_weights_(net, 0.01)
    for name, p in net.named_parameters():
        assert p.abs().max() <= 0.01
        inside = before[name].abs() <= 0.01
        assert torch.equal(p[inside], before[name][inside])  # values inside the bound are untouched


def test_spectral_norm_gives_unit_top_singular_value():
    net = apply_spectral_norm(MLPDiscriminator((8,), hidden=(32, 32)))
    apply_spectral_norm(net)  # idempotent: a second call adds no second parametrisation
    for _ in range(30):  # power iterations run on each training-mode forward
        net(torch.randn(4, 8))
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 3
    for layer in linears:
        assert len(layer.parametrizations.weight) == 1
        top = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
        assert_close(top, torch.tensor(1.0), atol=0.02, rtol=0)


def test_lazy_penalty_value_is_on_every_logged_row(run_fit, monkeypatch):
    # R1 every 4 D steps, a row every 2 G steps (n_critic 1): the penalty is computed on D steps 0, 4, 8, ...
    # and rows are written after D steps 1, 3, 5, ...; each row must carry the last value computed.
    # max_steps counts generator steps: 20 G steps = 20 D steps -> 5 penalties (D steps 0..16), 10 rows.
    from gan_modules import GANModule

    computed, rows = [], []
    original_r1, original_log = R1Penalty.__call__, GANModule.log_step_metrics

    def r1(self, *args, **kwargs):
        value = original_r1(self, *args, **kwargs)
        computed.append(float(value))
        return value

    def log_step_metrics(self, metrics):
        rows.append((metrics.get("train/gp"), computed[-1]))
        return original_log(self, metrics)

    monkeypatch.setattr(R1Penalty, "__call__", r1)
    monkeypatch.setattr(GANModule, "log_step_metrics", log_step_metrics)
    run_fit("gan_r1_ring.yaml", "--trainer.max_steps", "20", "--trainer.log_every_n_steps", "2",
            "--model.init_args.penalty.init_args.interval", "4", "--data.init_args.num_samples", "1024",
            "--data.init_args.batch_size", "64", "--trainer.callbacks", "[]")
    assert len(rows) == 10 and len(computed) == 5
    for logged, last in rows:
        assert logged is not None
        assert float(logged) == last
