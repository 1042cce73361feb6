"""pysf.algo.utils.rl_utils: Sample Factory's helpers (make_dones, size helpers, discounted sums, observation
preparation) and its positional call of gae_advantages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from pysf.algo.utils.rl_utils import (
    calculate_discounted_sum_torch,
    gae_advantages,
    make_dones,
    num_agents_per_worker,
    prepare_and_normalize_obs,
    samples_per_trajectory,
    total_num_agents,
    total_num_envs,
    trajectories_per_minibatch,
    trajectories_per_training_iteration,
)
from pysf.algo.utils.tensor_dict import TensorDict
from pysf.utils.attr_dict import AttrDict


def reference_gae(rewards, dones, values, valids, gamma, lam) -> np.ndarray:
    """Sample Factory's GAE with invalid steps, written out per trajectory (batch-major inputs)."""
    n, t_len = rewards.shape
    adv = np.zeros((n, t_len))
    for i in range(n):
        acc = 0.0
        for t in reversed(range(t_len)):
            delta = (rewards[i, t] - values[i, t]) * valids[i, t] + (1 - dones[i, t]) * gamma * values[i, t + 1] * valids[i, t + 1]
            d = gamma * lam if valids[i, t] else 1.0
            acc = delta + d * (1 - dones[i, t]) * acc
            adv[i, t] = acc
    return adv


def random_batch(n=5, t_len=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(n, t_len, generator=g)
    dones = torch.rand(n, t_len, generator=g) < 0.2
    values = torch.randn(n, t_len + 1, generator=g)
    valids = torch.rand(n, t_len + 1, generator=g) < 0.8
    return rewards, dones, values, valids


def test_gae_advantages_takes_sample_factorys_positional_call():
    rewards, dones, values, valids = random_batch()
    gamma, lam = 0.99, 0.95
    adv = gae_advantages(rewards, dones, values, valids, gamma, lam)  # SF: (rewards, dones, values, valids, γ, λ)
    expected = reference_gae(rewards.numpy(), dones.numpy().astype(float), values.numpy(), valids.numpy().astype(float), gamma, lam)
    np.testing.assert_allclose(adv.numpy(), expected, rtol=1e-5, atol=1e-5)
    # Sample Factory computes the same from the TD errors with calculate_discounted_sum_torch (time-major).
    v, val, d = values.T, valids.T.float(), dones.T.float()
    deltas = (rewards.T - v[:-1]) * val[:-1] + (1 - d) * (gamma * v[1:] * val[1:])
    via_discounted_sum = calculate_discounted_sum_torch(deltas, d, val[:-1], gamma * lam).T
    torch.testing.assert_close(adv, via_discounted_sum, rtol=1e-5, atol=1e-5)


def test_calculate_discounted_sum_by_hand():
    x = torch.tensor([1.0, 2.0, 3.0])
    out = calculate_discounted_sum_torch(x, torch.tensor([0.0, 1.0, 0.0]), torch.ones(3), 0.5, torch.tensor(10.0))
    # S2 = 3 + 0.5 * 10 = 8; the episode ends after step 1: S1 = 2; S0 = 1 + 0.5 * 2 = 2
    torch.testing.assert_close(out, torch.tensor([2.0, 2.0, 8.0]))
    # an invalid step does not discount: S2 = 3, S1 = 0 + 1 * 3, S0 = 1 + 0.5 * 3
    out = calculate_discounted_sum_torch(
        torch.tensor([1.0, 0.0, 3.0]), torch.zeros(3, dtype=torch.bool), torch.tensor([True, False, True]), 0.5
    )
    torch.testing.assert_close(out, torch.tensor([2.5, 3.0, 3.0]))


def test_calculate_discounted_sum_is_torchscript():
    @torch.jit.script
    def returns(rewards: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
        return calculate_discounted_sum_torch(rewards, dones, torch.ones_like(rewards), 0.9)

    rewards = torch.ones(4, 2)
    out = returns(rewards, torch.zeros(4, 2))
    torch.testing.assert_close(out[:, 0], torch.tensor([1 + 0.9 + 0.81 + 0.729, 1 + 0.9 + 0.81, 1.9, 1.0]))
    assert out.shape == (4, 2)


def test_make_dones():
    assert make_dones(True, False) is True and make_dones(False, False) is False
    assert bool(make_dones(np.bool_(False), np.bool_(True))) is True
    np.testing.assert_array_equal(make_dones(np.array([True, False, False]), np.array([False, False, True])), [True, False, True])
    assert torch.equal(make_dones(torch.tensor([True, False]), torch.tensor([True, True])), torch.tensor([True, True]))
    assert make_dones([True, False, False], [False, False, True]) == [True, False, True]
    assert make_dones((False, True), (True, False)) == [True, True], "sequences give a list, as in Sample Factory"
    with pytest.raises(ValueError, match="make_dones"):
        make_dones(None, None)


def test_sizes_from_the_config():
    cfg = AttrDict(batch_size=1024, rollout=32, num_batches_per_epoch=4, num_workers=3, num_envs_per_worker=8)
    env_info = AttrDict(num_agents=2)
    assert trajectories_per_minibatch(cfg) == 32
    assert trajectories_per_training_iteration(cfg) == 128
    assert total_num_envs(cfg) == 24
    assert total_num_agents(cfg, env_info) == 48
    assert num_agents_per_worker(cfg, env_info) == 16


def test_samples_per_trajectory():
    assert samples_per_trajectory(TensorDict(rewards=torch.zeros(6, 32), obs=torch.zeros(6, 33, 4))) == 192
    assert samples_per_trajectory({"rewards": np.zeros((2, 5))}) == 10


def test_prepare_and_normalize_obs():
    from pysf.cfg.arguments import default_cfg
    from pysf.model.actor_critic import create_actor_critic

    cfg = default_cfg(env="test_env")
    cfg.normalize_input = True
    cfg.obs_subtract_mean = 1.0
    cfg.obs_scale = 2.0
    obs_space = spaces.Dict({"obs": spaces.Box(-10, 10, (4,), dtype=np.float32)})
    model = create_actor_critic(cfg, obs_space, spaces.Discrete(3))
    model.eval()  # no statistics updates: the expectation below can use the same model
    raw = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float64)
    obs = {"obs": raw.copy()}
    normalized = prepare_and_normalize_obs(model, obs)
    assert isinstance(obs["obs"], torch.Tensor), "entries replaced by tensors on the model's device (as in SF)"
    assert normalized["obs"].dtype == model.type_for_input_tensor("obs") == torch.float32
    expected = model.normalize_obs({"obs": torch.from_numpy(raw)})["obs"].float()
    torch.testing.assert_close(normalized["obs"], expected)
    # obs_subtract_mean and obs_scale were applied: (x - 1) / 2, then running-stat normalization (identity here)
    torch.testing.assert_close(normalized["obs"], ((torch.from_numpy(raw) - 1.0) / 2.0).float() / (1 + 1e-5) ** 0.5)
