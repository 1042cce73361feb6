"""The learner's return/advantage operators torch.ops.pysf.gae_advantages / vtrace (csrc/ops, called through
pysf.algo.utils.rl_utils): GAE with invalid steps, V-trace.

Both kernels that run on CPU tensors' data are checked: the CPU kernel (what the operator picks for CPU tensors)
and the device-generic ATen kernel (CompositeExplicitAutograd: what every other device, CUDA included, runs),
reached on CPU tensors by its dispatch key. They are checked against plain-Python loop references written
straight from the formulas (float64), on hand computed cases and on random batches with invalid steps, episode
ends, all-invalid rows, T = 1, flag dtypes and non-contiguous inputs; the CPU kernel against vectorized-torch
loops with Sample Factory's float32 arithmetic (bit for bit on x86-64) and against the generic kernel; plus the
registration (`import pysf` alone), TorchScript, torch.export and torch.compile, the argument checks, the
autograd contract and GIL release.
"""

from __future__ import annotations

import functools
import platform
import subprocess
import sys
import threading
import time
import warnings
from typing import Callable, NamedTuple, Tuple

import numpy as np
import pytest
import torch
from torch import Tensor

from pysf.algo.utils.rl_utils import gae_advantages, vtrace

from helpers.gil import count_while_alive

# float32 results against float64 references: a few float32 ulps of the magnitudes involved.
RTOL = 2e-5
ATOL = 2e-5


# ------------------------------------------------------------------------------------------------
# Plain-Python references, straight from the formulas (Sample Factory's semantics).
# ------------------------------------------------------------------------------------------------


def gae_reference(rewards, dones, values, valids, gamma: float, gae_lambda: float) -> np.ndarray:
    """A_t = delta_t + (1 - done_t) * d_t * A_{t+1}, A_T = 0, invalid steps transparent (d_t = 1)."""
    r = np.asarray(rewards, dtype=np.float64)
    d = np.asarray(dones, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    ok = np.asarray(valids, dtype=np.float64)
    n, t_len = r.shape
    advantages = np.zeros((n, t_len))
    for i in range(n):
        advantage = 0.0
        for t in reversed(range(t_len)):
            delta = (r[i, t] - v[i, t]) * ok[i, t] + (1 - d[i, t]) * gamma * v[i, t + 1] * ok[i, t + 1]
            discount = gamma * gae_lambda if ok[i, t] else 1.0
            advantage = delta + (1 - d[i, t]) * discount * advantage
            advantages[i, t] = advantage
    return advantages


def vtrace_reference(
    ratios, rewards, dones, values, gamma: float, rho_bar: float, c_bar: float
) -> Tuple[np.ndarray, np.ndarray]:
    """V-trace as Sample Factory's learner: V_T = (V_{T-1} - r_{T-1}) / gamma, vs_T = V_T, backwards."""
    ratio = np.asarray(ratios, dtype=np.float64)
    r = np.asarray(rewards, dtype=np.float64)
    d = np.asarray(dones, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    n, t_len = r.shape
    vs = np.zeros((n, t_len))
    advantages = np.zeros((n, t_len))
    for i in range(n):
        value_next = (v[i, -1] - r[i, -1]) / gamma
        vs_next = value_next
        for t in reversed(range(t_len)):
            rho = min(rho_bar, ratio[i, t])
            c = min(c_bar, ratio[i, t])
            g = gamma * (1 - d[i, t])
            delta = rho * (r[i, t] + g * value_next - v[i, t])
            advantages[i, t] = rho * (r[i, t] + g * vs_next - v[i, t])
            vs[i, t] = v[i, t] + delta + g * c * (vs_next - value_next)
            vs_next = vs[i, t]
            value_next = v[i, t]
    return vs, advantages


# Vectorized-torch loops over T (time-major, float32), the usual way to write these in Python, with Sample
# Factory's grouping of the float operations: the CPU loops must reproduce them bit for bit on x86-64.


def gae_torch_loop(rewards: Tensor, dones: Tensor, values: Tensor, valids: Tensor, gamma: float, lam: float) -> Tensor:
    r, d, v, ok = rewards.t().float(), dones.t().float(), values.t().float(), valids.t().float()
    not_done = 1.0 - d
    deltas = (r - v[:-1]) * ok[:-1] + not_done * (gamma * v[1:] * ok[1:])
    discounts = gamma * lam * ok[:-1] + (1.0 - ok[:-1])
    out = torch.empty_like(deltas)
    advantage = torch.zeros_like(deltas[0])
    for t in reversed(range(deltas.shape[0])):
        advantage = deltas[t] + discounts[t] * advantage * not_done[t]
        out[t] = advantage
    return out.t().contiguous()


def vtrace_torch_loop(
    ratios: Tensor, rewards: Tensor, dones: Tensor, values: Tensor, gamma: float, rho_bar: float, c_bar: float
) -> Tuple[Tensor, Tensor]:
    ratio, r, d, v = ratios.t().float(), rewards.t().float(), dones.t().float(), values.t().float()
    rho = torch.clamp_max(ratio, rho_bar)
    c = torch.clamp_max(ratio, c_bar)
    g = (1.0 - d) * gamma
    vs = torch.empty_like(v)
    adv = torch.empty_like(v)
    value_next = (v[-1] - r[-1]) / gamma
    vs_next = value_next
    for t in reversed(range(v.shape[0])):
        delta = rho[t] * (r[t] + g[t] * value_next - v[t])
        adv[t] = rho[t] * (r[t] + g[t] * vs_next - v[t])
        vs_next = v[t] + delta + g[t] * c[t] * (vs_next - value_next)
        vs[t] = vs_next
        value_next = v[t]
    return vs.t().contiguous(), adv.t().contiguous()


# ------------------------------------------------------------------------------------------------
# Random inputs
# ------------------------------------------------------------------------------------------------


def random_gae_inputs(n: int, t: int, seed: int, done_p: float = 0.1, invalid_p: float = 0.2):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(n, t, generator=g)
    dones = torch.rand(n, t, generator=g) < done_p
    values = torch.randn(n, t + 1, generator=g) * 3
    valids = torch.rand(n, t + 1, generator=g) >= invalid_p
    return rewards, dones, values, valids


def random_vtrace_inputs(n: int, t: int, seed: int, done_p: float = 0.1):
    g = torch.Generator().manual_seed(seed)
    ratios = torch.exp(torch.randn(n, t, generator=g) * 0.7).clamp(0.05, 20.0)
    rewards = torch.randn(n, t, generator=g)
    dones = torch.rand(n, t, generator=g) < done_p
    values = torch.randn(n, t, generator=g) * 3
    return ratios, rewards, dones, values


def assert_close(actual: Tensor, expected, rtol: float = RTOL, atol: float = ATOL) -> None:
    assert actual.dtype == torch.float32
    np.testing.assert_allclose(actual.numpy().astype(np.float64), expected, rtol=rtol, atol=atol)


class Kernels(NamedTuple):
    """The two operators, as one kernel of theirs computes them."""

    gae: Callable[..., Tensor]
    vtrace: Callable[..., Tuple[Tensor, Tensor]]


def generic_kernel(op: str) -> Callable:
    """The operator's CompositeExplicitAutograd kernel, called directly (as torch's OpOverload.decompose reaches
    a composite kernel): the device-generic ATen kernel, on CPU tensors too. Test and reference use only."""
    overload = getattr(torch.ops.pysf, op).default
    return functools.partial(overload._op_dk, torch._C.DispatchKey.CompositeExplicitAutograd)


# The public wrappers: CPU tensors make the dispatcher pick the CPU kernel.
CPU_KERNEL = Kernels(gae_advantages, vtrace)
GENERIC = Kernels(generic_kernel("gae_advantages"), generic_kernel("vtrace"))
KERNELS = pytest.mark.parametrize("kernels", [CPU_KERNEL, GENERIC], ids=["cpu_loops", "generic_aten"])


# ------------------------------------------------------------------------------------------------
# GAE
# ------------------------------------------------------------------------------------------------


@KERNELS
def test_gae_hand_computed(kernels):
    rewards = torch.tensor([[1.0, 2.0, 3.0]])
    values = torch.tensor([[0.5, 0.5, 0.5, 1.0]])
    all_valid = torch.ones(1, 4, dtype=torch.bool)
    no_dones = torch.zeros(1, 3, dtype=torch.bool)
    # gamma 0.9, lambda 0.8: delta = [0.95, 1.95, 3.4]; A2 = 3.4, A1 = 1.95 + 0.72 * 3.4, A0 = 0.95 + 0.72 * A1
    adv = kernels.gae(rewards, no_dones, values, all_valid, 0.9, 0.8)
    assert_close(adv, [[0.95 + 0.72 * (1.95 + 0.72 * 3.4), 1.95 + 0.72 * 3.4, 3.4]], rtol=1e-6, atol=1e-6)

    # An episode ends after step 1: nothing after it reaches steps 0 and 1.
    rewards = torch.tensor([[1.0, 2.0, 4.0]])
    values = torch.tensor([[1.0, 2.0, 3.0, 8.0]])
    dones = torch.tensor([[False, True, False]])
    adv = kernels.gae(rewards, dones, values, all_valid, 0.5, 0.5)
    assert adv.tolist() == [[1.0, 0.0, 5.0]]

    # Step 1 is invalid: it adds gamma * V_2 and passes A_2 through undiscounted; step 0 does not bootstrap
    # from V_1. A2 = 1 + 0.5 * 8 = 5, A1 = 0.5 * 3 + 5 = 6.5, A0 = 0 + 0.25 * 6.5.
    valids = torch.tensor([[True, False, True, True]])
    no_dones = torch.zeros(1, 3, dtype=torch.bool)
    adv = kernels.gae(rewards, no_dones, values, valids, 0.5, 0.5)
    assert adv.tolist() == [[1.625, 6.5, 5.0]]


@KERNELS
@pytest.mark.parametrize("n,t", [(1, 1), (5, 1), (1, 7), (9, 3), (64, 32), (37, 17), (20, 128)])
def test_gae_matches_reference(kernels, n, t):
    rewards, dones, values, valids = random_gae_inputs(n, t, seed=n * 1000 + t)
    adv = kernels.gae(rewards, dones, values, valids, 0.99, 0.95)
    assert adv.shape == (n, t) and adv.is_contiguous()
    assert_close(adv, gae_reference(rewards, dones, values, valids, 0.99, 0.95))


@KERNELS
@pytest.mark.parametrize("gamma,lam", [(0.0, 0.95), (1.0, 1.0), (0.9, 0.0), (0.99, 1.0)])
def test_gae_gamma_lambda_extremes(kernels, gamma, lam):
    rewards, dones, values, valids = random_gae_inputs(16, 12, seed=3)
    adv = kernels.gae(rewards, dones, values, valids, gamma, lam)
    assert_close(adv, gae_reference(rewards, dones, values, valids, gamma, lam))


@KERNELS
def test_gae_all_invalid_rows_are_zero_and_do_not_touch_other_rows(kernels):
    rewards, dones, values, valids = random_gae_inputs(12, 16, seed=5)
    valids[3] = False
    valids[7] = False
    adv = kernels.gae(rewards, dones, values, valids, 0.99, 0.95)
    assert (adv[3] == 0).all() and (adv[7] == 0).all()
    assert_close(adv, gae_reference(rewards, dones, values, valids, 0.99, 0.95))
    # The same rows alone give the same results (rows are independent).
    others = [i for i in range(12) if i not in (3, 7)]
    alone = kernels.gae(
        rewards[others], dones[others], values[others], valids[others], 0.99, 0.95
    )
    assert torch.equal(alone, adv[others])


@KERNELS
def test_gae_done_cuts_off_the_future(kernels):
    rewards, _, values, valids = random_gae_inputs(8, 20, seed=11)
    dones = torch.zeros(8, 20, dtype=torch.bool)
    dones[:, 9] = True
    adv = kernels.gae(rewards, dones, values, valids, 0.99, 0.95)
    rewards2, values2 = rewards.clone(), values.clone()
    rewards2[:, 10:] += 100.0
    values2[:, 10:] -= 50.0
    adv2 = kernels.gae(rewards2, dones, values2, valids, 0.99, 0.95)
    assert torch.equal(adv[:, :10], adv2[:, :10])
    assert not torch.equal(adv[:, 10:], adv2[:, 10:])


@KERNELS
def test_gae_all_invalid_trajectory_bootstrap_step_invalid(kernels):
    # Only the bootstrap column invalid: the last step must not bootstrap from V_T.
    rewards, dones, values, valids = random_gae_inputs(4, 6, seed=13, invalid_p=0.0)
    valids[:, -1] = False
    adv = kernels.gae(rewards, dones, values, valids, 0.99, 0.95)
    assert_close(adv[:, -1], (rewards[:, -1] - values[:, -2]).double().numpy())
    assert_close(adv, gae_reference(rewards, dones, values, valids, 0.99, 0.95))


FLAG_DTYPES = [torch.bool, torch.float32, torch.float64, torch.uint8, torch.int64]


@KERNELS
@pytest.mark.parametrize("done_dtype", FLAG_DTYPES)
@pytest.mark.parametrize("valid_dtype", [torch.bool, torch.float32, torch.int32])
def test_gae_flag_dtypes_give_identical_results(kernels, done_dtype, valid_dtype):
    rewards, dones, values, valids = random_gae_inputs(17, 9, seed=21)
    expected = kernels.gae(rewards, dones, values, valids, 0.99, 0.95)
    adv = kernels.gae(rewards, dones.to(done_dtype), values, valids.to(valid_dtype), 0.99, 0.95)
    assert torch.equal(adv, expected)


@KERNELS
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_gae_other_float_dtypes_compute_in_float32(kernels, dtype):
    rewards, dones, values, valids = random_gae_inputs(8, 10, seed=23)
    rewards, values = rewards.to(dtype), values.to(dtype)
    adv = kernels.gae(rewards, dones, values, valids, 0.99, 0.95)
    assert adv.dtype == torch.float32
    expected = kernels.gae(rewards.float(), dones, values.float(), valids, 0.99, 0.95)
    assert torch.equal(adv, expected)


@KERNELS
def test_gae_non_contiguous_inputs(kernels):
    rewards, dones, values, valids = random_gae_inputs(10, 8, seed=29)
    expected = kernels.gae(rewards, dones, values, valids, 0.99, 0.95)
    # Transposed storage, column slices of wider buffers, every other row of a taller one.
    big_values = torch.randn(20, 12)
    big_values[::2, 2:11] = values
    big_valids = torch.zeros(12, 20, dtype=torch.bool)
    big_valids.t()[::2, 1:10] = valids
    adv = kernels.gae(
        rewards.t().contiguous().t(),
        dones.float().t().contiguous().t(),
        big_values[::2, 2:11],
        big_valids.t()[::2, 1:10],
        0.99,
        0.95,
    )
    assert torch.equal(adv, expected)
    assert adv.is_contiguous()


def test_gae_generic_matches_cpu_loops_on_a_large_batch():
    rewards, dones, values, valids = random_gae_inputs(4096, 32, seed=31, done_p=0.02, invalid_p=0.05)
    fast = gae_advantages(rewards, dones, values, valids, 0.99, 0.95)
    generic = GENERIC.gae(rewards, dones, values, valids, 0.99, 0.95)
    torch.testing.assert_close(generic, fast, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast, gae_torch_loop(rewards, dones, values, valids, 0.99, 0.95), rtol=1e-5, atol=1e-5)


@KERNELS
def test_gae_empty_batch(kernels):
    empty_t, empty_t1 = torch.zeros(0, 5), torch.zeros(0, 6)
    adv = kernels.gae(empty_t, empty_t, empty_t1, empty_t1, 0.99, 0.95)
    assert adv.shape == (0, 5) and adv.dtype == torch.float32


def test_gae_learner_returns():
    """returns = A + valid * V (Sample Factory's _prepare_batch) from the op's advantages."""
    rewards, dones, values, valids = random_gae_inputs(6, 10, seed=37)
    adv = gae_advantages(rewards, dones, values, valids, 0.99, 0.95)
    returns = adv + valids[:, :-1] * values[:, :-1]
    ref_adv = gae_reference(rewards, dones, values, valids, 0.99, 0.95)
    expected = ref_adv + valids[:, :-1].double().numpy() * values[:, :-1].double().numpy()
    np.testing.assert_allclose(returns.double().numpy(), expected, rtol=RTOL, atol=ATOL)


# ------------------------------------------------------------------------------------------------
# V-trace
# ------------------------------------------------------------------------------------------------


@KERNELS
def test_vtrace_hand_computed(kernels):
    ratios = torch.tensor([[2.0, 0.5, 1.0]])
    rewards = torch.tensor([[1.0, 2.0, 4.0]])
    values = torch.tensor([[1.0, 2.0, 3.0]])
    # gamma 0.5, caps 1: bootstrap V_3 = (3 - 4) / 0.5 = -2, so the last step's TD error is 0 and vs_2 = V_2.
    # t=1 (ratio 0.5): delta = 0.5 * (2 + 1.5 - 2) = 0.75, adv = 0.75, vs_1 = 2 + 0.75 + 0.25 * (3 - 3) = 2.75
    # t=0 (ratio 2, capped to 1): delta = 1, adv = 1 + 0.5 * 2.75 - 1, vs_0 = 1 + 1 + 0.5 * (2.75 - 2)
    vs, adv = kernels.vtrace(ratios, rewards, torch.zeros(1, 3), values, 0.5, 1.0, 1.0)
    assert vs.tolist() == [[2.375, 2.75, 3.0]]
    assert adv.tolist() == [[1.375, 0.75, 0.0]]

    # The last step is terminal: no bootstrap at all. t=2: delta = adv = 4 - 3, vs_2 = 4;
    # t=1: delta = 0.75, adv = 0.5 * (2 + 2 - 2) = 1, vs_1 = 2 + 0.75 + 0.25 * (4 - 3) = 3;
    # t=0: delta = 1, adv = 1 + 1.5 - 1, vs_0 = 1 + 1 + 0.5 * (3 - 2).
    dones = torch.tensor([[False, False, True]])
    vs, adv = kernels.vtrace(ratios, rewards, dones, values, 0.5, 1.0, 1.0)
    assert vs.tolist() == [[2.5, 3.0, 4.0]]
    assert adv.tolist() == [[1.5, 1.0, 1.0]]


@KERNELS
@pytest.mark.parametrize("n,t", [(1, 1), (5, 1), (1, 7), (9, 3), (64, 32), (37, 17), (20, 128)])
@pytest.mark.parametrize("rho_bar,c_bar", [(1.0, 1.0), (2.0, 0.5), (float("inf"), float("inf"))])
def test_vtrace_matches_reference(kernels, n, t, rho_bar, c_bar):
    ratios, rewards, dones, values = random_vtrace_inputs(n, t, seed=n * 1000 + t)
    vs, adv = kernels.vtrace(ratios, rewards, dones, values, 0.99, rho_bar, c_bar)
    assert vs.shape == adv.shape == (n, t) and vs.is_contiguous() and adv.is_contiguous()
    ref_vs, ref_adv = vtrace_reference(ratios, rewards, dones, values, 0.99, rho_bar, c_bar)
    assert_close(vs, ref_vs)
    assert_close(adv, ref_adv)


@KERNELS
def test_vtrace_on_policy_is_n_step_return(kernels):
    """With ratios 1 and caps >= 1, vs_t is the discounted return bootstrapped with V_T (the textbook check)."""
    _, rewards, dones, values = random_vtrace_inputs(8, 6, seed=41)
    gamma = 0.9
    vs, _ = kernels.vtrace(torch.ones(8, 6), rewards, dones, values, gamma, 1.0, 1.0)
    r, d, v = rewards.double().numpy(), dones.double().numpy(), values.double().numpy()
    expected = np.zeros((8, 6))
    for i in range(8):
        ret = (v[i, -1] - r[i, -1]) / gamma
        for t in reversed(range(6)):
            ret = r[i, t] + gamma * (1 - d[i, t]) * ret
            expected[i, t] = ret
    assert_close(vs, expected)


@KERNELS
def test_vtrace_non_terminal_last_step_has_zero_td_error(kernels):
    ratios, rewards, _, values = random_vtrace_inputs(32, 8, seed=43)
    vs, adv = kernels.vtrace(ratios, rewards, torch.zeros(32, 8), values, 0.97, 1.0, 1.0)
    torch.testing.assert_close(vs[:, -1], values[:, -1], rtol=0, atol=1e-5)
    torch.testing.assert_close(adv[:, -1], torch.zeros(32), rtol=0, atol=1e-5)


@KERNELS
def test_vtrace_done_cuts_off_the_future(kernels):
    ratios, rewards, _, values = random_vtrace_inputs(8, 20, seed=47)
    dones = torch.zeros(8, 20)
    dones[:, 9] = 1.0
    vs, adv = kernels.vtrace(ratios, rewards, dones, values, 0.99, 1.0, 1.0)
    ratios2, rewards2, values2 = ratios.clone(), rewards.clone(), values.clone()
    ratios2[:, 10:] = 1.7
    rewards2[:, 10:] += 100.0
    values2[:, 10:] -= 50.0
    vs2, adv2 = kernels.vtrace(ratios2, rewards2, dones, values2, 0.99, 1.0, 1.0)
    assert torch.equal(vs[:, :10], vs2[:, :10]) and torch.equal(adv[:, :10], adv2[:, :10])


@KERNELS
def test_vtrace_nan_ratio_propagates_like_torch_min(kernels):
    ratios, rewards, dones, values = random_vtrace_inputs(3, 4, seed=53)
    ratios[1, 2] = float("nan")
    vs, adv = kernels.vtrace(ratios, rewards, torch.zeros(3, 4), values, 0.99, 1.0, 1.0)
    assert torch.isnan(adv[1, 2]) and torch.isnan(vs[1, :3]).all()
    assert torch.isfinite(vs[[0, 2]]).all() and torch.isfinite(adv[[0, 2]]).all()


@KERNELS
@pytest.mark.parametrize("done_dtype", FLAG_DTYPES)
def test_vtrace_flag_dtypes_give_identical_results(kernels, done_dtype):
    ratios, rewards, dones, values = random_vtrace_inputs(13, 11, seed=59)
    expected = kernels.vtrace(ratios, rewards, dones, values, 0.99, 1.0, 1.0)
    got = kernels.vtrace(ratios, rewards, dones.to(done_dtype), values, 0.99, 1.0, 1.0)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


@KERNELS
def test_vtrace_non_contiguous_inputs(kernels):
    ratios, rewards, dones, values = random_vtrace_inputs(10, 8, seed=61)
    expected = kernels.vtrace(ratios, rewards, dones, values, 0.99, 1.0, 1.0)
    big = torch.randn(20, 12)
    big[::2, 3:11] = values
    got = kernels.vtrace(
        ratios.t().contiguous().t(), rewards.double(), dones.t().contiguous().t(), big[::2, 3:11], 0.99, 1.0, 1.0
    )
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_vtrace_learner_layout():
    """The learner's flat [N*T] minibatch, viewed [N, recurrence], gives per-trajectory results in that layout."""
    ratios, rewards, dones, values = random_vtrace_inputs(6, 8, seed=67)
    flat = [x.reshape(-1) for x in (ratios, rewards, dones, values)]
    vs, adv = vtrace(*(x.view(-1, 8) for x in flat), 0.99, 1.0, 1.0)
    ref_vs, ref_adv = vtrace_reference(ratios, rewards, dones, values, 0.99, 1.0, 1.0)
    assert_close(vs.view(-1), ref_vs.reshape(-1))
    assert_close(adv.view(-1), ref_adv.reshape(-1))


@pytest.mark.parametrize("n", [1, 7, 8, 9, 127, 128, 129, 300])
def test_vtrace_generic_matches_cpu_loops_across_block_sizes(n):
    """The CPU loops work in blocks of trajectories; sizes around the block boundaries."""
    ratios, rewards, dones, values = random_vtrace_inputs(n, 5, seed=71 + n)
    fast = vtrace(ratios, rewards, dones, values, 0.99, 1.0, 0.9)
    generic = GENERIC.vtrace(ratios, rewards, dones, values, 0.99, 1.0, 0.9)
    ref_vs, ref_adv = vtrace_reference(ratios, rewards, dones, values, 0.99, 1.0, 0.9)
    for got in (fast, generic):
        assert_close(got[0], ref_vs)
        assert_close(got[1], ref_adv)


def test_vtrace_generic_matches_cpu_loops_on_a_large_batch():
    ratios, rewards, dones, values = random_vtrace_inputs(4096, 32, seed=73, done_p=0.02)
    fast = vtrace(ratios, rewards, dones, values, 0.99, 1.0, 1.0)
    generic = GENERIC.vtrace(ratios, rewards, dones, values, 0.99, 1.0, 1.0)
    loop = vtrace_torch_loop(ratios, rewards, dones, values, 0.99, 1.0, 1.0)
    for other in (generic, loop):
        torch.testing.assert_close(other[0], fast[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(other[1], fast[1], rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="other targets may fuse multiply-adds")
def test_cpu_loops_reproduce_sample_factory_float32_arithmetic_bit_for_bit():
    """The CPU loops keep Sample Factory's grouping of the float32 operations (the torch loops above)."""
    rewards, dones, values, valids = random_gae_inputs(300, 33, seed=109)
    expected = gae_torch_loop(rewards, dones, values, valids, 0.99, 0.95)
    assert torch.equal(gae_advantages(rewards, dones, values, valids, 0.99, 0.95), expected)
    ratios, rewards, dones, values = random_vtrace_inputs(300, 33, seed=113)
    for rho_bar, c_bar in [(1.0, 1.0), (1.5, 0.8)]:
        got = vtrace(ratios, rewards, dones, values, 0.97, rho_bar, c_bar)
        expected = vtrace_torch_loop(ratios, rewards, dones, values, 0.97, rho_bar, c_bar)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


@KERNELS
def test_vtrace_empty_batch(kernels):
    vs, adv = kernels.vtrace(torch.zeros(0, 4), torch.zeros(0, 4), torch.zeros(0, 4), torch.zeros(0, 4), 0.99, 1.0, 1.0)
    assert vs.shape == adv.shape == (0, 4)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 127, 128, 129, 300])
def test_gae_generic_matches_cpu_loops_across_block_sizes(n):
    rewards, dones, values, valids = random_gae_inputs(n, 5, seed=79 + n)
    ref = gae_reference(rewards, dones, values, valids, 0.99, 0.95)
    for kernels in (CPU_KERNEL, GENERIC):
        assert_close(kernels.gae(rewards, dones, values, valids, 0.99, 0.95), ref)


# ------------------------------------------------------------------------------------------------
# The operators: registration, TorchScript, torch.export, torch.compile
# ------------------------------------------------------------------------------------------------


def test_import_pysf_registers_the_operators_with_their_kernels():
    """A bare `import pysf` in a fresh interpreter registers both operators: the schemas and the kernel of each
    dispatch key (csrc/ops/registration.cpp, linked whole-archive into pysf._C)."""
    script = """
import torch, pysf
for name in ("pysf::gae_advantages", "pysf::vtrace"):
    for key in ("CPU", "CompositeExplicitAutograd", "Meta"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(name, key), (name, key)
    assert torch._C._dispatch_kernel_for_dispatch_key_is_fallthrough(name, "Autograd"), name
print(torch.ops.pysf.gae_advantages.default._schema)
print(torch.ops.pysf.vtrace.default._schema)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "pysf::gae_advantages(Tensor rewards, Tensor dones, Tensor values, Tensor valids, float gamma, "
        "float gae_lambda) -> Tensor",
        "pysf::vtrace(Tensor ratios, Tensor rewards, Tensor dones, Tensor values, float gamma, float vtrace_rho, "
        "float vtrace_c) -> (Tensor vs, Tensor advantages)",
    ]


def _learner_step(rewards: Tensor, dones: Tensor, values: Tensor, valids: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Both operators inside a function, as a model or learner step would call them."""
    advantages = torch.ops.pysf.gae_advantages(rewards, dones, values, valids, 0.99, 0.95)
    ratios = torch.ones_like(rewards)
    vs, vtrace_advantages = torch.ops.pysf.vtrace(ratios, rewards, dones, values[:, :-1], 0.99, 1.0, 1.0)
    return advantages + valids[:, :-1] * values[:, :-1], vs, vtrace_advantages


def _assert_all_equal(got, expected) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert torch.equal(a, b)


def test_operators_work_in_torchscript():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates torch.jit.script
        scripted = torch.jit.script(_learner_step)
    graph = str(scripted.graph)
    assert "pysf::gae_advantages" in graph and "pysf::vtrace" in graph
    args = random_gae_inputs(9, 7, seed=131)
    _assert_all_equal(scripted(*args), _learner_step(*args))


def test_operators_stay_single_nodes_under_torch_export_with_a_dynamic_batch():
    class Step(torch.nn.Module):
        def forward(self, rewards, dones, values, valids):
            return _learner_step(rewards, dones, values, valids)

    n = torch.export.Dim("n")
    program = torch.export.export(Step(), random_gae_inputs(9, 7, seed=137), dynamic_shapes=({0: n},) * 4)
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert {"pysf.gae_advantages.default", "pysf.vtrace.default"} <= targets
    args = random_gae_inputs(20, 7, seed=139)  # another batch size: the Meta kernels took a symbolic N
    _assert_all_equal(program.module()(*args), _learner_step(*args))


def test_operators_work_under_torch_compile_with_dynamic_shapes():
    """aot_eager: Dynamo and AOTAutograd trace with fake tensors (the Meta kernels); no C compiler involved."""
    compiled = torch.compile(_learner_step, backend="aot_eager", fullgraph=True, dynamic=True)
    for n in (9, 20):
        rewards, dones, values, valids = random_gae_inputs(n, 7, seed=141 + n)
        values.requires_grad_()
        got = compiled(rewards, dones, values, valids)
        _assert_all_equal(got, _learner_step(rewards, dones, values, valids))
        assert got[0].requires_grad and not got[1].requires_grad and not got[2].requires_grad


def test_torch_library_opcheck():
    """torch's own operator checks: schema, autograd registration, fake tensors, AOT dispatch (dynamic)."""
    ratios, rewards, dones, values = random_vtrace_inputs(7, 5, seed=149)
    for op, args in (
        (torch.ops.pysf.gae_advantages.default, (*random_gae_inputs(7, 5, seed=151), 0.99, 0.95)),
        (torch.ops.pysf.vtrace.default, (ratios, rewards, dones, values, 0.99, 1.0, 0.9)),
    ):
        results = torch.library.opcheck(op, args)
        assert set(results.values()) == {"SUCCESS"}, results


# ------------------------------------------------------------------------------------------------
# Contract: autograd, devices, errors, GIL
# ------------------------------------------------------------------------------------------------


@KERNELS
def test_results_have_no_history_and_can_enter_autograd(kernels):
    rewards, dones, values, valids = random_gae_inputs(4, 5, seed=83)
    values = values.requires_grad_()
    adv = kernels.gae(rewards, dones, values, valids, 0.99, 0.95)
    assert not adv.requires_grad and adv.grad_fn is None and not adv.is_inference()

    ratios, rewards, dones, v = random_vtrace_inputs(4, 5, seed=89)
    ratios = ratios.requires_grad_()
    vs, vadv = kernels.vtrace(ratios, rewards, dones, v.requires_grad_(), 0.99, 1.0, 1.0)
    assert not vs.requires_grad and not vadv.requires_grad
    # The learner multiplies them with differentiable tensors (policy and value losses).
    loss = -(ratios * vadv).mean() + (v - vs).pow(2).mean()
    loss.backward()
    torch.testing.assert_close(ratios.grad, -vadv / vadv.numel())


def test_inputs_are_not_modified():
    rewards, dones, values, valids = random_gae_inputs(9, 7, seed=97)
    copies = [x.clone() for x in (rewards, dones, values, valids)]
    gae_advantages(rewards, dones, values, valids, 0.99, 0.95)
    ratios, vr, vd, vv = random_vtrace_inputs(9, 7, seed=98)
    vcopies = [x.clone() for x in (ratios, vr, vd, vv)]
    vtrace(ratios, vr, vd, vv, 0.99, 1.0, 1.0)
    for a, b in zip((rewards, dones, values, valids, ratios, vr, vd, vv), copies + vcopies):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kernels", [CPU_KERNEL, GENERIC], ids=["meta_kernel", "generic_aten"])
def test_meta_tensors_give_shapes_and_the_generic_kernel_is_device_generic(kernels):
    """Meta tensors (shapes only): the operators' Meta kernels, and the generic kernel, which uses only
    device-generic ATen ops, runs on them too."""
    meta = torch.device("meta")
    adv = kernels.gae(
        torch.empty(6, 4, device=meta), torch.empty(6, 4, dtype=torch.bool, device=meta),
        torch.empty(6, 5, device=meta), torch.empty(6, 5, dtype=torch.bool, device=meta), 0.99, 0.95,
    )
    assert adv.device == meta and adv.shape == (6, 4) and adv.dtype == torch.float32
    vs, vadv = kernels.vtrace(*(torch.empty(6, 4, device=meta) for _ in range(4)), 0.99, 1.0, 1.0)
    assert vs.device == meta and vadv.device == meta and vs.shape == vadv.shape == (6, 4)
    assert vs.dtype == vadv.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensors_match_cpu():
    rewards, dones, values, valids = random_gae_inputs(256, 32, seed=101)
    cpu = gae_advantages(rewards, dones, values, valids, 0.99, 0.95)
    cuda = gae_advantages(rewards.cuda(), dones.cuda(), values.cuda(), valids.cuda(), 0.99, 0.95)
    assert cuda.is_cuda
    torch.testing.assert_close(cuda.cpu(), cpu, rtol=1e-5, atol=1e-5)
    ratios, vr, vd, vv = random_vtrace_inputs(256, 32, seed=103)
    cpu_v = vtrace(ratios, vr, vd, vv, 0.99, 1.0, 1.0)
    cuda_v = vtrace(ratios.cuda(), vr.cuda(), vd.cuda(), vv.cuda(), 0.99, 1.0, 1.0)
    for a, b in zip(cuda_v, cpu_v):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "position,replacement,message",
    [
        (0, torch.zeros(3), "gae_advantages: rewards must be 2-D [N, T], got shape [3]"),
        (0, torch.zeros(3, 0), "at least one step"),
        (1, torch.zeros(3, 5), "dones must have shape [N, T] = [3, 4], got [3, 5]"),
        (2, torch.zeros(3, 4), "values must have shape [N, T+1] = [3, 5], got [3, 4]"),
        (3, torch.zeros(2, 5), "valids must have shape [N, T+1] = [3, 5], got [2, 5]"),
        (0, torch.zeros(3, 4, dtype=torch.int64), "rewards must have a floating-point dtype, got Long"),
        (2, torch.zeros(3, 5, dtype=torch.int32), "values must have a floating-point dtype"),
        (1, torch.zeros(3, 4, dtype=torch.complex64), "dones must be bool or a real dtype"),
        (3, torch.zeros(3, 5, device="meta"), "valids is on meta but the first argument is on cpu"),
    ],
)
def test_gae_argument_errors(position, replacement, message):
    args = list(random_gae_inputs(3, 4, seed=0))
    args[position] = replacement
    with pytest.raises(ValueError) as info:
        gae_advantages(*args, 0.99, 0.95)
    assert message in str(info.value)


@pytest.mark.parametrize("gamma,lam,name", [(float("nan"), 0.95, "gamma"), (0.99, float("inf"), "gae_lambda")])
def test_gae_rejects_non_finite_parameters(gamma, lam, name):
    with pytest.raises(ValueError, match=f"gae_advantages: {name} must be finite"):
        gae_advantages(*random_gae_inputs(3, 4, seed=0), gamma, lam)


@pytest.mark.parametrize(
    "args,params,message",
    [
        ((torch.ones(3, 4), torch.ones(3, 4), torch.ones(3, 4), torch.ones(3, 5)), (0.99, 1.0, 1.0),
         "vtrace: values must have shape [N, T] (no bootstrap column) = [3, 4], got [3, 5]"),
        ((torch.ones(3, 4), torch.ones(4, 4), torch.ones(3, 4), torch.ones(3, 4)), (0.99, 1.0, 1.0),
         "rewards must have shape [N, T] = [3, 4], got [4, 4]"),
        ((torch.ones(3, 4, dtype=torch.int64), torch.ones(3, 4), torch.ones(3, 4), torch.ones(3, 4)),
         (0.99, 1.0, 1.0), "ratios must have a floating-point dtype"),
        ((torch.ones(3, 0), torch.ones(3, 0), torch.ones(3, 0), torch.ones(3, 0)), (0.99, 1.0, 1.0),
         "at least one step"),
        ((torch.ones(3, 4), torch.ones(3, 4), torch.ones(3, 4, device="meta"), torch.ones(3, 4)), (0.99, 1.0, 1.0),
         "dones is on meta"),
        ((torch.ones(3, 4),) * 4, (0.0, 1.0, 1.0), "gamma must be finite and > 0"),
        ((torch.ones(3, 4),) * 4, (-0.5, 1.0, 1.0), "gamma must be finite and > 0"),
        ((torch.ones(3, 4),) * 4, (0.99, float("nan"), 1.0), "vtrace_rho must not be NaN"),
        ((torch.ones(3, 4),) * 4, (0.99, 1.0, float("nan")), "vtrace_c must not be NaN"),
    ],
)
def test_vtrace_argument_errors(args, params, message):
    with pytest.raises(ValueError) as info:
        vtrace(*args, *params)
    assert message in str(info.value)


@pytest.mark.parametrize("op", ["gae_cpu_loops", "gae_generic", "vtrace_cpu_loops", "vtrace_generic"])
def test_ops_release_the_gil(op):
    """The main thread keeps counting while another thread runs the op back to back.

    With a 0.1 ms switch interval, an op that held the GIL would leave the main thread only the gaps between
    calls (a few percent of the time); released, the main thread counts at a good fraction of its solo rate.
    """
    rewards, dones, values, valids = random_gae_inputs(4096, 64, seed=107)
    ratios = torch.rand(4096, 64) + 0.5
    kernels = GENERIC if op.endswith("generic") else CPU_KERNEL
    value_t = values[:, 1:]

    def call():
        if op.startswith("gae"):
            return kernels.gae(rewards, dones, values, valids, 0.99, 0.95)
        return kernels.vtrace(ratios, rewards, dones, value_t, 0.99, 1.0, 1.0)
    call()
    per_call = min(timeit_once(call) for _ in range(3))
    calls = max(20, int(0.2 / per_call))

    def run():
        for _ in range(calls):
            call()

    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        solo_count, solo_seconds = count_while_alive(threading.Thread(target=time.sleep, args=(0.05,)))
        count, elapsed = count_while_alive(threading.Thread(target=run))
    finally:
        sys.setswitchinterval(previous_interval)
    expected = solo_count / solo_seconds * elapsed
    assert count >= 0.25 * expected, (
        f"the main thread counted {count} during {calls} calls ({elapsed:.3f} s), {count / expected:.1%} of its "
        f"solo rate: the op held the GIL"
    )


def timeit_once(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start
