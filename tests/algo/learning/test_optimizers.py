"""pysf's own Adam and LAMB: torch.optim.Adam's updates and state, LAMB's formulas as Sample Factory sets them."""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Callable, Dict, List

import pytest
import torch
from torch import Tensor

from pysf.algo.learning.optimizers import Adam, Lamb

STEPS = 12


def make_params(seed: int = 0) -> List[Tensor]:
    """Tensors like a small actor-critic's: weights of various norms (one above LAMB's cap of 10), a zero bias."""
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(16, 8, generator=g) * 0.3).requires_grad_(),
        torch.zeros(16).requires_grad_(),
        (torch.randn(40, 40, generator=g) * 1.5).requires_grad_(),  # norm ~60
        (torch.randn(4, generator=g) * 1e-4).requires_grad_(),  # tiny weights: LAMB's lower trust clip
        torch.randn(3, 5, generator=g).requires_grad_(),  # tiny gradients below: LAMB's upper trust clip
    ]


def gradients(params: List[Tensor], step: int) -> List[Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    grads = [torch.randn(p.shape, generator=g) for p in params]
    grads[-1] = grads[-1] * 1e-9
    return grads


def run(make_optimizer: Callable[[List[Tensor]], object], steps: int = STEPS, lrs: Dict[int, float] = None) -> List[Tensor]:
    params = make_params()
    optimizer = make_optimizer(params)
    for step in range(steps):
        if lrs and step in lrs:
            for group in optimizer.param_groups:
                group["lr"] = lrs[step]
        for p, grad in zip(params, gradients(params, step)):
            p.grad = grad
        optimizer.step()
    return [p.detach() for p in params]


# ---- Adam against torch.optim.Adam -----------------------------------------------------------------------

ADAM_SETTINGS = [
    dict(lr=1e-4, betas=(0.9, 0.999), eps=1e-6),  # pysf's defaults (--learning_rate, --adam_beta1/2, --adam_eps)
    dict(lr=3e-3, betas=(0.9, 0.999), eps=1e-6),  # the native CartPole defaults' rate
    dict(lr=1e-3, betas=(0.8, 0.95), eps=1e-8, weight_decay=0.01),
]


@pytest.mark.parametrize("settings", ADAM_SETTINGS)
def test_adam_matches_torch_single_tensor_adam_bit_for_bit(settings):
    ours = run(lambda params: Adam(params, **settings))
    theirs = run(lambda params: torch.optim.Adam(params, foreach=False, **settings))
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)


@pytest.mark.parametrize("settings", ADAM_SETTINGS)
def test_adam_matches_torch_default_adam_closely(settings):
    ours = run(lambda params: Adam(params, **settings))
    theirs = run(lambda params: torch.optim.Adam(params, **settings))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_adam_follows_learning_rate_changes_like_torch():
    """The learner sets ``group["lr"]`` between steps (schedules, smaller steps for stale samples)."""
    lrs = {3: 5e-4, 7: 0.0, 9: 2e-3}
    ours = run(lambda params: Adam(params, lr=1e-3, eps=1e-6), lrs=lrs)
    theirs = run(lambda params: torch.optim.Adam(params, lr=1e-3, eps=1e-6, foreach=False), lrs=lrs)
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)


def test_adam_state_dict_round_trips_with_torch_adam():
    """Sample Factory checkpoints hold torch.optim.Adam's state: it loads here and continues identically, and back."""
    settings = dict(lr=1e-3, eps=1e-6)
    for source, target in ((torch.optim.Adam, Adam), (Adam, lambda p, **kw: torch.optim.Adam(p, foreach=False, **kw))):
        params = make_params()
        first = source(params, **settings)
        for step in range(5):
            for p, grad in zip(params, gradients(params, step)):
                p.grad = grad
            first.step()
        continued = [p.detach().clone().requires_grad_() for p in params]
        second = target(continued, **settings)
        second.load_state_dict(first.state_dict())
        reference = torch.optim.Adam(params, foreach=False, **settings)
        reference.load_state_dict(copy.deepcopy(first.state_dict()))  # torch's load keeps the tensors it is given
        for step in range(5, 9):
            for p, q, grad in zip(params, continued, gradients(params, step)):
                p.grad, q.grad = grad, grad.clone()
            reference.step()
            second.step()
        for p, q in zip(params, continued):
            assert torch.equal(p.detach(), q.detach())


def test_adam_skips_parameters_without_gradients_and_zero_grad_clears():
    params = make_params()
    optimizer = Adam(params, lr=1e-2)
    before = params[1].detach().clone()
    params[0].grad = torch.ones_like(params[0])
    optimizer.step()
    assert torch.equal(params[1].detach(), before) and params[1] not in optimizer.state
    optimizer.zero_grad(set_to_none=True)
    assert params[0].grad is None


def test_loaded_step_count_stays_a_cpu_float_scalar():
    optimizer = Adam(make_params(), lr=1e-3)
    state = {"state": {0: {"step": 7, "exp_avg": torch.zeros(16, 8), "exp_avg_sq": torch.zeros(16, 8)}},
             "param_groups": [dict(optimizer.param_groups[0], params=list(range(5)))]}
    optimizer.load_state_dict(state)
    step = optimizer.state[optimizer.param_groups[0]["params"][0]]["step"]
    assert step.device.type == "cpu" and step.dtype == torch.float32 and float(step) == 7.0


# ---- LAMB against its formulas --------------------------------------------------------------------------


def reference_lamb(params: List[Tensor], lr: float, betas, eps: float, weight_decay: float, min_trust: float):
    """LAMB written from the paper's algorithm (You et al. 2019, Algorithm 2) in float64, with the scaling function
    phi(z) = min(z, 10) and the trust ratio clipped to [min_trust, 1/min_trust] as Sample Factory's LAMB does."""
    beta1, beta2 = betas
    weights = [p.detach().double().clone() for p in params]
    m = [torch.zeros_like(w) for w in weights]
    v = [torch.zeros_like(w) for w in weights]
    for t in range(1, STEPS + 1):
        for i, grad in enumerate(gradients(params, t - 1)):
            grad = grad.double()
            m[i] = beta1 * m[i] + (1 - beta1) * grad
            v[i] = beta2 * v[i] + (1 - beta2) * grad * grad
            m_hat = m[i] / (1 - beta1**t)
            v_hat = v[i] / (1 - beta2**t)
            r = m_hat / (v_hat.sqrt() + eps) + weight_decay * weights[i]
            w_norm, r_norm = float(weights[i].norm()), float(r.norm())
            if w_norm == 0.0 or r_norm == 0.0:
                ratio = 1.0
            else:
                ratio = min(max(min(w_norm, 10.0) / r_norm, min_trust), 1.0 / min_trust)
            weights[i] = weights[i] - lr * ratio * r
    return weights


LAMB_SETTINGS = [
    dict(lr=1e-4, betas=(0.9, 0.999), eps=1e-6, weight_decay=1e-4, min_trust=0.01),  # as the learner builds it
    dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, min_trust=0.01),
    dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.05, min_trust=0.1),
]


@pytest.mark.parametrize("settings", LAMB_SETTINGS)
def test_lamb_matches_the_formulas(settings):
    ours = run(lambda params: Lamb(params, **settings))
    expected = reference_lamb(make_params(), **settings)
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-7)


def test_lamb_trust_ratio_cases_are_exercised():
    """The parameters above reach each branch: the cap on ||w||, both clips and the zero-norm case."""
    params = make_params()
    grads = gradients(params, 0)
    ratios = []
    for p, grad in zip(params, grads):
        r = grad / (grad.abs() + 1e-6) + 1e-4 * p.detach()  # the first step's r: m_hat / sqrt(v_hat) = sign(g)
        w_norm, r_norm = float(p.detach().norm()), float(r.norm())
        ratios.append(None if w_norm == 0 else min(w_norm, 10.0) / r_norm)
    assert float(params[2].detach().norm()) > 10.0
    assert ratios[1] is None and ratios[3] < 0.01 and ratios[4] > 100.0


def test_lamb_defaults_are_sample_factorys():
    defaults = Lamb(make_params()).defaults
    assert defaults["weight_decay"] == 1e-4 and defaults["min_trust"] == 0.01 and defaults["eps"] == 1e-6


def test_lamb_loads_sample_factory_state_whose_step_is_one_ahead():
    """Sample Factory's LAMB stores ``step`` as an int that counts the next step; pysf continues as if it had run."""
    settings = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-6)
    params = make_params()
    trained = Lamb(params, **settings)
    for step in range(4):
        for p, grad in zip(params, gradients(params, step)):
            p.grad = grad
        trained.step()
    saved = trained.state_dict()
    sf_style = {
        "state": {i: dict(s, step=int(s["step"]) + 1) for i, s in saved["state"].items()},
        "param_groups": [dict(g, bias_correction=True, use_look_ahead=False) for g in saved["param_groups"]],
    }
    resumed = Lamb([p.detach().clone().requires_grad_() for p in params], **settings)
    resumed.load_state_dict(sf_style)
    assert [float(s["step"]) for s in resumed.state.values()] == [4.0] * len(params)


def test_optimizers_do_not_import_torch_dynamo():
    """The reason these optimizers exist: torch.optim.Optimizer imports torch._dynamo (seconds of start-up)."""
    code = (
        "import sys, torch\n"
        "from pysf.algo.learning.optimizers import Adam, Lamb\n"
        "p = [torch.zeros(3, requires_grad=True)]\n"
        "for opt in (Adam(p), Lamb(p)):\n"
        "    p[0].grad = torch.ones(3); opt.step(); opt.load_state_dict(opt.state_dict())\n"
        "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_loading_state_copies_it():
    """A loaded optimizer never updates the caller's tensors (torch.optim's load keeps them when they fit)."""
    params = make_params()
    source = Adam(params, lr=1e-3)
    for p, grad in zip(params, gradients(params, 0)):
        p.grad = grad
    source.step()
    saved = source.state_dict()
    snapshot = copy.deepcopy(saved)
    target = Adam([p.detach().clone().requires_grad_() for p in params], lr=1e-3)
    target.load_state_dict(saved)
    for p, grad in zip(target.param_groups[0]["params"], gradients(params, 1)):
        p.grad = grad
    target.step()
    for index, state in saved["state"].items():
        for key, value in state.items():
            assert torch.equal(value, snapshot["state"][index][key])
