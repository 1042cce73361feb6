"""APPO learner math: losses against direct formulas, batch preparation, RNN unrolling, LR schedules."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from pysf.algo.learning import appo_loss
from pysf.algo.learning.learner import Learner
from pysf.algo.utils.env_info import EnvInfo
from pysf.algo.utils.tensor_dict import TensorDict
from pysf.cfg.arguments import default_cfg
from pysf.model.model_utils import get_rnn_size


def small_cfg(**overrides):
    cfg = default_cfg(env="test")
    cfg.use_rnn = False
    cfg.recurrence = 1
    cfg.encoder_mlp_layers = [16]
    cfg.rollout = 4
    cfg.batch_size = 16
    cfg.num_batches_per_epoch = 2
    cfg.num_epochs = 1
    cfg.rnn_size = 8
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


ENV_INFO = EnvInfo(obs_space=spaces.Dict(obs=spaces.Box(-1, 1, (3,))), action_space=spaces.Discrete(2))


def fake_batch(cfg, num_traj: int = 8, seed: int = 0, policy_version: int = 0) -> TensorDict:
    g = torch.Generator().manual_seed(seed)
    t = cfg.rollout
    r = get_rnn_size(cfg)
    return TensorDict(
        obs=TensorDict(obs=torch.rand(num_traj, t + 1, 3, generator=g)),
        rnn_states=torch.zeros(num_traj, t + 1, r),
        actions=torch.randint(0, 2, (num_traj, t, 1), generator=g).float(),
        action_logits=torch.randn(num_traj, t, 2, generator=g),
        log_prob_actions=torch.full((num_traj, t), math.log(0.5)),
        values=torch.randn(num_traj, t + 1, generator=g),
        rewards=torch.rand(num_traj, t, generator=g),
        dones=torch.rand(num_traj, t, generator=g) < 0.2,
        time_outs=torch.zeros(num_traj, t, dtype=torch.bool),
        policy_version=torch.full((num_traj, t), policy_version, dtype=torch.int32),
        policy_id=torch.zeros(num_traj, t, dtype=torch.int32),
        valids=torch.ones(num_traj, t + 1, dtype=torch.bool),
    )


# ---- loss terms against direct formulas -------------------------------------------------------------


def test_policy_loss_matches_the_formula():
    ratio = torch.tensor([0.5, 0.95, 1.0, 1.05, 2.0])
    adv = torch.tensor([1.0, -1.0, 2.0, 1.0, -3.0])
    valids = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0])
    eps = 0.1
    expected = []
    for r, a, v in zip(ratio.tolist(), adv.tolist(), valids.tolist()):
        clipped = min(max(r, 1 / (1 + eps)), 1 + eps)
        expected.append(v * min(r * a, clipped * a))
    expected = -sum(expected) / valids.sum().item()
    got = appo_loss.policy_loss(ratio, adv, eps, valids, valids.sum())
    assert got.item() == pytest.approx(expected)


def test_value_loss_matches_the_formula():
    v = torch.tensor([1.0, 3.0, -2.0])
    v_old = torch.tensor([0.5, 0.0, -2.5])
    targets = torch.tensor([2.0, 0.5, 0.0])
    valids = torch.ones(3)
    c = 1.0
    expected = []
    for a, b, t in zip(v.tolist(), v_old.tolist(), targets.tolist()):
        clipped = b + min(max(a - b, -c), c)
        expected.append(max((a - t) ** 2, (clipped - t) ** 2))
    got = appo_loss.value_loss(v, v_old, targets, c, valids, valids.sum())
    assert got.item() == pytest.approx(np.mean(expected))


def test_advantage_normalization_ignores_invalid_samples():
    adv = torch.tensor([1.0, 2.0, 3.0, 1000.0])
    valids = torch.tensor([1.0, 1.0, 1.0, 0.0])
    normalized = appo_loss.normalized_advantages(adv, valids, valids.sum())
    valid = normalized[:3]
    assert valid.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert torch.sqrt((valid**2).mean()).item() == pytest.approx(1.0, rel=1e-5)


def test_symmetric_kl_loss_is_capped_and_finite():
    valids = torch.ones(2)
    assert appo_loss.symmetric_kl_loss(torch.tensor([100.0, 100.0]), valids, valids.sum()).item() == 30.0
    assert appo_loss.symmetric_kl_loss(torch.tensor([float("nan"), 1.0]), valids, valids.sum()).item() == 0.0


# ---- batch preparation --------------------------------------------------------------------------------


def test_prepare_batch_masks_stale_experience():
    cfg = small_cfg(max_policy_lag=5, normalize_returns=False)
    learner = Learner(cfg, ENV_INFO)
    learner.train_step = 10
    batch = fake_batch(cfg)
    batch["policy_version"][:4] = 2  # lag 8 > 5: invalid
    batch["policy_version"][4:] = 9  # lag 1: valid
    data = learner.prepare_batch(batch)
    valids = data["valids"].reshape(8, cfg.rollout)
    assert valids[:4].sum() == 0 and bool((valids[4:] == 1).all())
    # invalid steps are transparent to GAE and their returns are just the advantage (no value term)
    assert data["advantages"].shape == (8 * cfg.rollout,)


def test_prepare_batch_value_bootstrap_adds_discounted_value_on_truncation():
    cfg = small_cfg(value_bootstrap=True, normalize_returns=False, normalize_input=False)
    learner = Learner(cfg, ENV_INFO)
    batch = fake_batch(cfg)
    batch["dones"][:] = False
    batch["dones"][0, 1] = True
    batch["time_outs"][0, 1] = True
    data = learner.prepare_batch(batch)
    rewards = data["rewards"].reshape(8, cfg.rollout)
    expected = batch["rewards"][0, 1] + cfg.gamma * batch["values"][0, 1]
    assert rewards[0, 1].item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.allclose(rewards[1:], batch["rewards"][1:])


def test_prepare_batch_gae_returns():
    cfg = small_cfg(normalize_returns=False, normalize_input=False, gamma=0.9, gae_lambda=0.8)
    learner = Learner(cfg, ENV_INFO)
    batch = fake_batch(cfg, num_traj=2)
    batch["dones"][:] = False
    data = learner.prepare_batch(batch)
    values = batch["values"].clone()
    with torch.no_grad():
        values[:, -1] = learner.actor_critic({"obs": batch["obs"]["obs"][:, -1]}, batch["rnn_states"][:, -1], values_only=True)["values"]
    # straightforward GAE without episode ends
    for n in range(2):
        advantage = 0.0
        expected = []
        for t in reversed(range(cfg.rollout)):
            delta = batch["rewards"][n, t] + cfg.gamma * values[n, t + 1] - values[n, t]
            advantage = delta + cfg.gamma * cfg.gae_lambda * advantage
            expected.append(float(advantage))
        expected = list(reversed(expected))
        got = data["advantages"].reshape(2, cfg.rollout)[n].tolist()
        assert got == pytest.approx(expected, rel=1e-4, abs=1e-5)
        returns = data["returns"].reshape(2, cfg.rollout)[n]
        assert torch.allclose(returns, torch.tensor(expected) + values[n, :-1], atol=1e-5)


# ---- training step -----------------------------------------------------------------------------------


def test_train_counts_sgd_steps_and_publishes_each_one():
    cfg = small_cfg(num_epochs=2)
    learner = Learner(cfg, ENV_INFO)
    published = []
    stats = learner.train(fake_batch(cfg), on_sgd_step=published.append)
    assert published == [1, 2, 3, 4] and learner.train_step == 4
    assert learner.env_steps == 8 * cfg.rollout
    for key in ("loss", "policy_loss", "value_loss", "entropy", "kl_divergence", "grad_norm", "version_diff_avg"):
        assert key in stats and math.isfinite(stats[key])


def test_rnn_unroll_equals_a_step_by_step_loop():
    cfg = small_cfg(use_rnn=True, recurrence=4, rnn_type="gru", batch_size=16)
    learner = Learner(cfg, ENV_INFO)
    model = learner.actor_critic
    n = 16
    head = torch.randn(n, model.encoder.get_out_size())
    dones = (torch.rand(n) < 0.3).float()
    rnn_states = torch.randn(n, get_rnn_size(cfg))
    mb = TensorDict(rnn_states=rnn_states, dones=dones)
    got = learner._core_output(head, mb)
    expected = []
    for chunk in range(n // 4):
        state = rnn_states[chunk * 4 : chunk * 4 + 1]
        for t in range(4):
            i = chunk * 4 + t
            out, state = model.core(head[i : i + 1], state)
            expected.append(out)
            if dones[i] > 0:
                state = torch.zeros_like(state)
    assert torch.allclose(got, torch.cat(expected), atol=1e-5)


@pytest.mark.parametrize("schedule", ["constant", "kl_adaptive_minibatch", "kl_adaptive_epoch", "linear_decay"])
def test_lr_schedules(schedule):
    cfg = small_cfg(lr_schedule=schedule, train_for_env_steps=10 * 16, learning_rate=1e-3)
    learner = Learner(cfg, ENV_INFO)
    learner.train(fake_batch(cfg))
    if schedule == "constant":
        assert learner.curr_lr == 1e-3
    elif schedule == "linear_decay":
        assert learner.curr_lr < 1e-3
    else:
        assert cfg.lr_adaptive_min <= learner.curr_lr <= cfg.lr_adaptive_max


def test_checkpoint_state_round_trip():
    cfg = small_cfg()
    learner = Learner(cfg, ENV_INFO)
    learner.train(fake_batch(cfg))
    state = learner.checkpoint_state()
    other = Learner(cfg, ENV_INFO)
    other.load_checkpoint_state(state)
    assert other.train_step == learner.train_step and other.env_steps == learner.env_steps
    for a, b in zip(learner.actor_critic.state_dict().values(), other.actor_critic.state_dict().values()):
        assert torch.equal(a, b)


def test_vtrace_training_step():
    cfg = small_cfg(with_vtrace=True, normalize_returns=False, recurrence=4)
    learner = Learner(cfg, ENV_INFO)
    stats = learner.train(fake_batch(cfg))
    assert learner.train_step == 2 and math.isfinite(stats["loss"]) and math.isfinite(stats["value_loss"])


# ---- numerics of whole training iterations, recorded before the issue-11 rewrite --------------------------

PARITY_CONFIGS = {
    # feed-forward, GAE, both normalizers, value bootstrap on truncation, two epochs
    "ff_gae": dict(num_epochs=2, value_bootstrap=True),
    # shuffled chunks, stale samples (lag > 3 is invalid), KL loss, symmetric-KL exploration, per-minibatch KL LR
    "ff_stale_kl": dict(
        shuffle_minibatches=True, max_policy_lag=3, kl_loss_coeff=0.1, exploration_loss="symmetric_kl",
        lr_schedule="kl_adaptive_minibatch", num_epochs=2,
    ),
    # GRU unrolled over chunks of 4, V-trace, per-epoch KL LR, three epochs
    "gru_vtrace": dict(
        use_rnn=True, rnn_type="gru", recurrence=4, with_vtrace=True, normalize_returns=False,
        lr_schedule="kl_adaptive_epoch", num_epochs=3,
    ),
    # continuous actions, linear LR decay, no gradient clipping
    "box_linear_decay": dict(lr_schedule="linear_decay", train_for_env_steps=200, max_grad_norm=0.0),
    # discrete actions with an action mask observation
    "action_mask": dict(shuffle_minibatches=True),
}


def parity_env_info(name: str) -> EnvInfo:
    obs = dict(obs=spaces.Box(-1, 1, (3,)))
    if name == "action_mask":
        obs["action_mask"] = spaces.Box(0, 1, (3,))
    action_space = spaces.Box(-1, 1, (2,)) if name == "box_linear_decay" else spaces.Discrete(3)
    return EnvInfo(obs_space=spaces.Dict(obs), action_space=action_space)


def parity_batch(cfg, env_info: EnvInfo, iteration: int, train_step: int) -> TensorDict:
    """A fixed batch of 8 trajectories for iteration ``iteration`` (its own generator: nothing else draws from it)."""
    g = torch.Generator().manual_seed(1000 + iteration)
    n, t, r = 8, cfg.rollout, get_rnn_size(cfg)
    obs = TensorDict(obs=torch.rand(n, t + 1, 3, generator=g) * 2 - 1)
    if "action_mask" in env_info.obs_space.spaces:
        mask = (torch.rand(n, t + 1, 3, generator=g) < 0.7).float()
        mask[..., 0] = 1.0  # at least one allowed action
        obs["action_mask"] = mask
    if isinstance(env_info.action_space, spaces.Box):
        actions = torch.randn(n, t, 2, generator=g)
        action_logits = torch.randn(n, t, 4, generator=g) * 0.3
        log_prob_actions = -torch.rand(n, t, generator=g) * 3
    else:
        actions = torch.randint(0, 3, (n, t, 1), generator=g).float()
        action_logits = torch.randn(n, t, 3, generator=g)
        log_prob_actions = torch.log_softmax(action_logits, -1).gather(-1, actions.long()).squeeze(-1)
    dones = torch.rand(n, t, generator=g) < 0.2
    lag = torch.randint(0, 6, (n, 1), generator=g).expand(n, t)
    return TensorDict(
        obs=obs,
        rnn_states=torch.randn(n, t + 1, r, generator=g) * 0.1,
        actions=actions,
        action_logits=action_logits,
        log_prob_actions=log_prob_actions,
        values=torch.randn(n, t + 1, generator=g),
        rewards=torch.rand(n, t, generator=g),
        dones=dones,
        time_outs=dones & (torch.rand(n, t, generator=g) < 0.5),
        policy_version=(train_step - lag).to(torch.int32),
        policy_id=torch.zeros(n, t, dtype=torch.int32),
    )


def run_parity(name: str, iterations: int = 3):
    """``(stats of each iteration, lr after each, state_dict)`` of a fresh learner trained on the fixed batches."""
    cfg = small_cfg(**PARITY_CONFIGS[name])
    env_info = parity_env_info(name)
    torch.manual_seed(0)
    learner = Learner(cfg, env_info)
    stats, lrs = [], []
    for iteration in range(iterations):
        s = learner.train(parity_batch(cfg, env_info, iteration, learner.train_step))
        stats.append({k: v for k, v in s.items() if k != "train_seconds"})
        lrs.append(learner.curr_lr)
    return stats, lrs, learner


def parity_fingerprint(stats, learner: Learner) -> dict:
    """sha256 of every iteration's statistics and of the final weights, normalizers and optimizer state."""
    stats_digest = hashlib.sha256(repr(stats).encode()).hexdigest()
    h = hashlib.sha256()
    for key, value in learner.actor_critic.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().contiguous().numpy().tobytes())
    for _, state in sorted(learner.optimizer.state_dict()["state"].items()):
        for key in sorted(state):
            h.update(state[key].detach().contiguous().numpy().tobytes())
    abs_sum = sum(float(p.detach().double().abs().sum()) for p in learner.actor_critic.parameters())
    return dict(stats_sha256=stats_digest, state_sha256=h.hexdigest(), param_abs_sum=abs_sum)
