"""APPO learner math: losses against direct formulas, batch preparation, RNN unrolling, LR schedules."""

from __future__ import annotations

import hashlib
import math
import os
import sys

import numpy as np
import pytest
import torch
from gymnasium import spaces

from pysf.algo.learning import appo_loss
from pysf.algo.learning.learner import Learner
from pysf.algo.learning.lr_schedules import make_lr_schedule
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
    valids = data.steps["valids"].reshape(8, cfg.rollout)
    assert valids[:4].sum() == 0 and bool((valids[4:] == 1).all())
    assert data.steps["advantages"].shape == (8 * cfg.rollout,) and len(data) == 8 * cfg.rollout


def test_prepare_batch_value_bootstrap_adds_discounted_value_on_truncation():
    cfg = small_cfg(value_bootstrap=True, normalize_returns=False, normalize_input=False)
    learner = Learner(cfg, ENV_INFO)
    batch = fake_batch(cfg)
    batch["dones"][:] = False
    batch["dones"][0, 1] = True
    batch["time_outs"][0, 1] = True
    original_rewards = batch["rewards"].clone()
    expected = batch["rewards"][0, 1] + cfg.gamma * batch["values"][0, 1]
    learner.prepare_batch(batch)
    rewards = batch["rewards"]  # completed in place: the batch is the learner's
    assert rewards[0, 1].item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.equal(rewards[0, [0, 2, 3]], original_rewards[0, [0, 2, 3]]) and torch.equal(rewards[1:], original_rewards[1:])


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
        got = data.steps["advantages"].reshape(2, cfg.rollout)[n].tolist()
        assert got == pytest.approx(expected, rel=1e-4, abs=1e-5)
        returns = data.steps["returns"].reshape(2, cfg.rollout)[n]
        assert torch.allclose(returns, torch.tensor(expected) + values[n, :-1], atol=1e-5)


def test_prepare_batch_copies_only_what_the_loss_reads_and_consecutive_minibatches_are_views():
    cfg = small_cfg(normalize_input=False, normalize_returns=False)
    learner = Learner(cfg, ENV_INFO)
    batch = fake_batch(cfg)
    data = learner.prepare_batch(batch)
    shares = lambda a, b: a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()  # noqa: E731
    for key in ("actions", "action_logits", "log_prob_actions"):
        assert shares(data.steps[key], batch[key]), key
    assert set(data.steps) == {"actions", "action_logits", "log_prob_actions", "valids", "advantages", "returns",
                               "rnn_states", "values", "obs"}

    t = cfg.rollout
    indices = torch.tensor([0, 3, 4, 9, 31, 17])
    mb = data.minibatch(indices)
    traj, step = indices // t, indices % t
    assert torch.equal(mb["obs"]["obs"], batch["obs"]["obs"][traj, step])
    assert torch.equal(mb["values"], batch["values"][traj, step]) and torch.equal(mb["actions"], batch["actions"][traj, step])
    assert torch.equal(mb["rnn_states"], batch["rnn_states"][traj, step])
    assert torch.equal(mb["advantages"], data.steps["advantages"].view(8, t)[traj, step])

    consecutive = data.minibatch(slice(t, 3 * t))  # trajectories 1 and 2: views, the same values
    assert shares(consecutive["obs"]["obs"], data.steps["obs"]["obs"])
    assert torch.equal(consecutive["obs"]["obs"], batch["obs"]["obs"][1:3, :t].reshape(2 * t, -1))
    assert torch.equal(consecutive["values"], batch["values"][1:3, :t].reshape(-1))


def test_image_batches_are_laid_out_for_their_encoder_and_normalized_like_an_nchw_batch():
    info = EnvInfo(obs_space=spaces.Dict(obs=spaces.Box(0, 255, (3, 40, 40), dtype=np.uint8)), action_space=spaces.Discrete(3))
    cfg = small_cfg(normalize_input=True, obs_scale=255.0, encoder_conv_architecture="convnet_simple")
    learner = Learner(cfg, info)
    assert learner.actor_critic.memory_format_for_input_tensor("obs") == torch.channels_last
    n, t = 4, cfg.rollout
    frames = torch.randint(0, 255, (n, t + 1, 3, 40, 40), dtype=torch.uint8)
    batch = fake_batch(cfg, num_traj=n)
    batch["obs"] = TensorDict(obs=frames)
    data = learner.prepare_batch(batch)
    images = data.steps["obs"]["obs"]
    assert images.dtype == torch.float32 and images.is_contiguous(memory_format=torch.channels_last)
    scaled = frames.double() / 255.0
    rows = n * (t + 1)  # the statistics cover all T+1 steps, merged with the prior (mean 0, variance 1, count 1)
    batch_mean, batch_var = scaled.mean(dim=(0, 1)), scaled.var(dim=(0, 1), unbiased=False)
    mean = batch_mean * rows / (rows + 1)
    std = ((1.0 + batch_var * rows + batch_mean**2 * rows / (rows + 1)) / (rows + 1) + 1e-5).sqrt()
    expected = ((scaled[:, :t] - mean) / std).clamp(-5, 5).reshape(n * t, 3, 40, 40).float()
    torch.testing.assert_close(images, expected, atol=2e-5, rtol=1e-5)


def test_prepare_batch_keeps_dones_and_rewards_only_where_they_are_read():
    vtrace = Learner(small_cfg(with_vtrace=True, normalize_returns=False), ENV_INFO).prepare_batch(fake_batch(small_cfg()))
    assert {"rewards", "dones"} <= set(vtrace.steps) and "advantages" not in vtrace.steps
    rnn_cfg = small_cfg(use_rnn=True, recurrence=4, rnn_type="gru")
    rnn = Learner(rnn_cfg, ENV_INFO).prepare_batch(fake_batch(rnn_cfg))
    assert "dones" in rnn.steps and "rewards" not in rnn.steps


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


def count_learner_host_reads(monkeypatch, cfg) -> int:
    """How often one ``train`` call reads a tensor's value into Python in learner.py / appo_loss.py."""
    reads = []
    learning_dir = os.path.dirname(appo_loss.__file__)
    for name in ("__float__", "__int__", "__bool__", "item", "tolist"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if os.path.dirname(caller) == learning_dir and os.path.basename(caller) in ("learner.py", "appo_loss.py"):
                reads.append(caller)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    learner = Learner(cfg, ENV_INFO)
    learner.train(fake_batch(cfg, num_traj=16))
    monkeypatch.undo()
    return len(reads)


@pytest.mark.parametrize("overrides", [dict(), dict(max_policy_lag=1, shuffle_minibatches=True)])
def test_summaries_are_read_from_the_device_once_per_iteration_not_per_minibatch(monkeypatch, overrides):
    """Four times as many minibatches: not one more host read (stale samples: one more per epoch at most)."""
    few = count_learner_host_reads(monkeypatch, small_cfg(batch_size=32, num_batches_per_epoch=2, **overrides))
    many = count_learner_host_reads(monkeypatch, small_cfg(batch_size=8, num_batches_per_epoch=8, **overrides))
    assert few == many and few <= 3  # the valid count, the summaries, the per-epoch invalid fractions


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


# Recorded on 2026-12-01 from the learner at commit 0fa9859 (before the issue-11 rewrite) by running
# run_parity + parity_fingerprint for each config on an x86-64 CPU where
# torch.backends.cpu.get_cpu_capability() == 'AVX2' (torch 2.13.0+cpu); same on 1 and 2 threads.
# Re-recorded on 2026-12-02 when the observation statistics became float64 moments merged chunk by chunk
# (running_mean_std.py) over step-rows-first batches: the digests changed, while every last_stats figure and
# param_abs_sum stayed equal to the 0fa9859 record within 3e-16 relative (float64 rounding).
RECORDED_CPU_CAPABILITY = "AVX2"
RECORDED = {
    'ff_gae': dict(
        stats_sha256='32d552dcd3e82ec76d9551f31f9bc034762500653ff20f68178f18f4de899c9c',
        state_sha256='cbe80c68567f3f36cf83ecf0b63044457e053b1d9ca88e3737cd1570bdb8dc11',
        param_abs_sum=22.796388839837164,
        lrs=[0.0001, 0.0001, 0.0001],
        last_stats=dict(
            loss=1.153322458267212, policy_loss=0.349754273891449, value_loss=0.8068059682846069,
            exploration_loss=-0.0032377552706748247, kl_loss=0.0, entropy=1.079251766204834,
            value=-0.13694338500499725, grad_norm=1.3962209224700928, adv_mean=2.9802322387695312e-08,
            adv_min=-2.87804913520813, adv_max=1.6750434637069702, adv_std=1.0327955484390259,
            kl_divergence=0.31374749541282654, kl_divergence_max=0.6237105131149292, value_delta=0.8410955667495728,
            value_delta_max=2.4381141662597656, fraction_clipped=0.875, ratio_mean=1.959754467010498,
            ratio_min=0.41848403215408325, ratio_max=8.3960542678833, max_abs_logprob=1.6382646560668945, lr=0.0001,
            actual_lr=0.0001, num_sgd_steps=4, valids_fraction=1.0, same_policy_fraction=0.25, version_diff_avg=2.125,
            version_diff_min=0.0, version_diff_max=5.0, obs_running_mean=0.006924800109118223,
            obs_running_std=0.5783625841140747, returns_running_mean=1.4827183458915694,
            returns_running_std=0.9281618849084684,
        ),
    ),
    'ff_stale_kl': dict(
        stats_sha256='c19761dce5cd96918317fd15254da993fe46b9670338689396365773bea88e3a',
        state_sha256='84fc0a5b991882ebab3ae160c8450d12d177b5d892e2ec4529a700e8e2656133',
        param_abs_sum=22.7958846690226,
        lrs=[1.9753086419753087e-05, 3.901844231062338e-06, 1e-06],
        last_stats=dict(
            loss=1.105250358581543, policy_loss=0.33046865463256836, value_loss=0.7427551746368408,
            exploration_loss=5.926242010900751e-05, kl_loss=0.031967222690582275, entropy=1.0795328617095947,
            value=-0.057541653513908386, grad_norm=1.3976824283599854, adv_mean=1.4901161193847656e-08,
            adv_min=-1.7849236726760864, adv_max=1.7373058795928955, adv_std=0.7742431163787842,
            kl_divergence=0.31967222690582275, kl_divergence_max=0.9567804932594299, value_delta=0.7741461396217346,
            value_delta_max=2.4423747062683105, fraction_clipped=0.9375, ratio_mean=2.7081637382507324,
            ratio_min=0.42101243138313293, ratio_max=19.2900333404541, max_abs_logprob=1.6379952430725098, lr=1e-06,
            actual_lr=1e-06, num_sgd_steps=4, valids_fraction=0.5, same_policy_fraction=0.25, version_diff_avg=2.125,
            version_diff_min=0.0, version_diff_max=5.0, obs_running_mean=0.006924800109118223,
            obs_running_std=0.5783625841140747, returns_running_mean=0.6646882573661115,
            returns_running_std=0.7541191912342251,
        ),
    ),
    'gru_vtrace': dict(
        stats_sha256='99797ef5c22ae82e92e8bad6f1dea77b28e7f13c2cad77636846db4e8b57067a',
        state_sha256='21875cbd26425ec28173fd26c662c727046f4e00f690f970b8665630267bdef2',
        param_abs_sum=132.9915040958731,
        lrs=[2.962962962962963e-05, 8.77914951989026e-06, 2.601229487374892e-06],
        last_stats=dict(
            loss=1.771299123764038, policy_loss=1.3648405075073242, value_loss=0.40970784425735474,
            exploration_loss=-0.0032491714227944613, kl_loss=0.0, entropy=1.083057165145874, value=0.1537473350763321,
            grad_norm=1.7897555828094482, adv_mean=2.9802322387695312e-08, adv_min=-1.4801913499832153,
            adv_max=1.8389288187026978, adv_std=1.0327955484390259, kl_divergence=0.4065711498260498,
            kl_divergence_max=1.0797302722930908, value_delta=1.0333852767944336, value_delta_max=2.7843222618103027,
            fraction_clipped=0.875, ratio_mean=2.361114501953125, ratio_min=0.4214887320995331,
            ratio_max=16.02058219909668, max_abs_logprob=1.466787576675415, lr=2.601229487374892e-06,
            actual_lr=2.601229487374892e-06, num_sgd_steps=6, valids_fraction=1.0, same_policy_fraction=0.25,
            version_diff_avg=2.125, version_diff_min=0.0, version_diff_max=5.0, obs_running_mean=0.006924800109118223,
            obs_running_std=0.5783625841140747,
        ),
    ),
    'box_linear_decay': dict(
        stats_sha256='10fd5e2d4f4374d3eedee374a815260205ed79a1e9e6a2eae70a10e175680f04',
        state_sha256='a87704a80da189656f474938afd96e3a3f6d11c58e3b93b24d18f5159aa899d4',
        param_abs_sum=25.843577279541933,
        lrs=[9.166666666666667e-05, 7.500000000000001e-05, 5.8333333333333326e-05],
        last_stats=dict(
            loss=0.7957504391670227, policy_loss=0.22594940662384033, value_loss=0.5788477063179016,
            exploration_loss=-0.009046693332493305, kl_loss=0.0, entropy=3.015564441680908, value=0.03711334243416786,
            grad_norm=0.0, adv_mean=-5.960464477539063e-08, adv_min=-2.098529100418091, adv_max=1.7864185571670532,
            adv_std=1.0327955484390259, kl_divergence=0.7989758849143982, kl_divergence_max=3.2726643085479736,
            value_delta=0.9202532768249512, value_delta_max=1.8713501691818237, fraction_clipped=0.9375,
            ratio_mean=0.6665734052658081, ratio_min=0.05000000074505806, ratio_max=0.9667834043502808,
            max_abs_logprob=10.696837425231934, lr=5.8333333333333326e-05, actual_lr=5.8333333333333326e-05,
            num_sgd_steps=2, valids_fraction=1.0, same_policy_fraction=0.125, version_diff_avg=3.0,
            version_diff_min=1.0, version_diff_max=5.0, obs_running_mean=0.006924800109118223,
            obs_running_std=0.5783625841140747, returns_running_mean=1.4822678984594098,
            returns_running_std=0.8993401808544936,
        ),
    ),
    'action_mask': dict(
        stats_sha256='e33bf19247eb6e884471c196ca724fca614adfa12a748b0149074c5e452ab340',
        state_sha256='45d00b00a8c48e82d9b0bfe2a791f5d01bb5f82d5da7f0219a85bdf49ced5799',
        param_abs_sum=22.803411626526213,
        lrs=[0.0001, 0.0001, 0.0001],
        last_stats=dict(
            loss=2.118238687515259, policy_loss=0.6777729392051697, value_loss=1.4427355527877808,
            exploration_loss=-0.002269667573273182, kl_loss=0.0, entropy=0.7565558552742004,
            value=-0.18784242868423462, grad_norm=1.6061344146728516, adv_mean=-1.4901161193847656e-08,
            adv_min=-1.5119085311889648, adv_max=2.2050228118896484, adv_std=1.0327955484390259,
            kl_divergence=0.205767422914505, kl_divergence_max=0.6231627464294434, value_delta=0.9191641211509705,
            value_delta_max=2.2848072052001953, fraction_clipped=1.0, ratio_mean=1.1151113510131836,
            ratio_min=0.05000000074505806, ratio_max=6.001070976257324, max_abs_logprob=1000000000.0, lr=0.0001,
            actual_lr=0.0001, num_sgd_steps=2, valids_fraction=1.0, same_policy_fraction=0.25, version_diff_avg=3.0,
            version_diff_min=0.0, version_diff_max=5.0, obs_running_mean=0.006924800109118223,
            obs_running_std=0.5783625841140747, returns_running_mean=1.1844254722914744,
            returns_running_std=0.7980630100501933,
        ),
    ),
}


@pytest.mark.parametrize("name", list(PARITY_CONFIGS))
def test_training_numerics_match_the_recorded_learner(name):
    """Three iterations on fixed batches give the recorded statistics, LRs, weights and optimizer state.

    Bit for bit on a CPU like the recording one; elsewhere torch's vector kernels may round differently, so
    the figures are compared closely instead.
    """
    stats, lrs, learner = run_parity(name)
    recorded = RECORDED[name]
    assert list(stats[-1]) == list(recorded["last_stats"])  # the same summary names, in the same order
    if torch.backends.cpu.get_cpu_capability() == RECORDED_CPU_CAPABILITY:
        assert stats[-1] == recorded["last_stats"] and lrs == recorded["lrs"]
        assert parity_fingerprint(stats, learner) == {k: recorded[k] for k in ("stats_sha256", "state_sha256", "param_abs_sum")}
    else:
        assert stats[-1] == pytest.approx(recorded["last_stats"], rel=1e-4, abs=1e-6)
        assert lrs == pytest.approx(recorded["lrs"], rel=1e-6)
        assert parity_fingerprint(stats, learner)["param_abs_sum"] == pytest.approx(recorded["param_abs_sum"], rel=1e-5)


# ---- LR schedules against the rates the learner gave before they became classes --------------------------
# Recorded on 2026-12-01 from Learner._update_lr_kl / Learner._update_lr_linear at commit 0fa9859 (the code the
# schedule classes replaced), driven by the inputs below: KLS one by one for kl_adaptive_minibatch (starting at
# learning_rate=1e-4), float(np.mean(epoch)) for kl_adaptive_epoch, train_step 0..12 for linear_decay
# (learning_rate=3e-4, train_for_env_steps=170, batch_size=16, num_epochs=1).

LR_TEST_KLS = [0.02, 0.02, 0.001, 0.0, 0.005, 0.05, 0.016, 0.004, 0.0039, 0.0161, 0.008] + [1.0] * 14 + [0.0] * 26 + [0.01, 0.003]
LR_TEST_EPOCH_KLS = [[0.02, 0.01], [0.001, 0.002, 0.0], [0.016, 0.016], [0.004, 0.004, 0.004], [0.5], [0.0031, 0.0049]]
RECORDED_KL_MINIBATCH_LRS = [
    6.666666666666667e-05, 4.4444444444444447e-05, 6.666666666666667e-05, 0.0001, 0.0001, 6.666666666666667e-05,
    6.666666666666667e-05, 6.666666666666667e-05, 0.0001, 6.666666666666667e-05, 6.666666666666667e-05,
    4.4444444444444447e-05, 2.962962962962963e-05, 1.9753086419753087e-05, 1.3168724279835392e-05,
    8.77914951989026e-06, 5.852766346593507e-06, 3.901844231062338e-06, 2.601229487374892e-06,
    1.7341529915832613e-06, 1.156101994388841e-06, 1e-06, 1e-06, 1e-06, 1e-06, 1.5e-06, 2.25e-06, 3.375e-06,
    5.062499999999999e-06, 7.593749999999999e-06, 1.1390624999999999e-05, 1.7085937499999998e-05,
    2.5628906249999997e-05, 3.8443359375e-05, 5.76650390625e-05, 8.649755859375e-05, 0.000129746337890625,
    0.00019461950683593752, 0.0002919292602539063, 0.0004378938903808594, 0.0006568408355712891,
    0.0009852612533569338, 0.0014778918800354007, 0.002216837820053101, 0.0033252567300796516,
    0.0049878850951194775, 0.007481827642679216, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01
]
RECORDED_KL_EPOCH_LRS = [
    0.0001, 0.00015000000000000001, 0.00015000000000000001, 0.00015000000000000001, 0.0001, 0.0001
]
RECORDED_LINEAR_DECAY_LRS = [
    0.0003, 0.00027, 0.00023999999999999998, 0.00020999999999999998, 0.00017999999999999998, 0.00015,
    0.00011999999999999999, 9e-05, 5.999999999999998e-05, 2.999999999999999e-05, 0.0, 0.0, 0.0
]


def test_kl_adaptive_minibatch_gives_the_recorded_rates():
    schedule = make_lr_schedule(small_cfg(lr_schedule="kl_adaptive_minibatch"))
    lr, rates = 1e-4, []
    for step, kl in enumerate(LR_TEST_KLS):
        lr = schedule.before_sgd_step(lr, step)  # no effect: this schedule only listens to the KL
        lr = schedule.after_minibatch(lr, torch.tensor(kl, dtype=torch.float64))
        lr = schedule.after_epoch(lr, [torch.tensor(kl)])
        rates.append(lr)
    assert rates == RECORDED_KL_MINIBATCH_LRS


def test_kl_adaptive_epoch_gives_the_recorded_rates():
    schedule = make_lr_schedule(small_cfg(lr_schedule="kl_adaptive_epoch"))
    lr, rates = 1e-4, []
    for epoch_kls in LR_TEST_EPOCH_KLS:
        for kl in epoch_kls:
            lr = schedule.after_minibatch(lr, torch.tensor(kl, dtype=torch.float64))  # no effect
        lr = schedule.after_epoch(lr, [torch.tensor(kl, dtype=torch.float64) for kl in epoch_kls])
        rates.append(lr)
    assert rates == RECORDED_KL_EPOCH_LRS


def test_linear_decay_gives_the_recorded_rates():
    cfg = small_cfg(lr_schedule="linear_decay", learning_rate=3e-4, train_for_env_steps=170, batch_size=16, num_epochs=1)
    schedule = make_lr_schedule(cfg)
    rates = [schedule.before_sgd_step(1.0, step) for step in range(13)]  # the current rate does not matter
    assert rates == RECORDED_LINEAR_DECAY_LRS
    assert schedule.after_minibatch(0.5, torch.tensor(1.0)) == 0.5 and schedule.after_epoch(0.5, [torch.tensor(1.0)]) == 0.5


def test_constant_schedule_keeps_the_rate():
    schedule = make_lr_schedule(small_cfg(lr_schedule="constant"))
    assert schedule.before_sgd_step(2e-4, 7) == schedule.after_minibatch(2e-4, torch.tensor(9.0)) == 2e-4
    assert schedule.after_epoch(2e-4, [torch.tensor(9.0)]) == 2e-4


def test_unknown_lr_schedule_names_the_choices():
    with pytest.raises(ValueError, match="kl_adaptive_epoch"):
        make_lr_schedule(small_cfg(lr_schedule="cosine"))
