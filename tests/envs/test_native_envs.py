"""Native classic-control envs (pysf._C.NativeVectorEnv) against gymnasium 1.x, step by step.

Each native block of envs is driven next to one gymnasium env per row (``gymnasium.make(name)``, so
gymnasium's own TimeLimit decides truncation) with the same actions. At the start of every gymnasium
episode the native env is put into gymnasium's state with set_state; from there on only actions are
shared, so every observation, reward and flag of the whole episode must agree. The actions mix random
ones (out of the Box bounds too, to exercise clipping) with simple controllers that reach the goal, so
that termination, truncation and auto-reset are all exercised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import gymnasium as gym
import numpy as np
import pytest
import torch

from pysf import _C

NAMES = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"]
MAX_EPISODE_STEPS = {
    "CartPole-v1": 500,
    "Acrobot-v1": 500,
    "MountainCar-v0": 200,
    "MountainCarContinuous-v0": 999,
    "Pendulum-v1": 200,
}

# The spec asks for 1e-5 relative; the native envs reproduce gymnasium's float64 arithmetic operation
# for operation, so in practice they agree to the last bit (see the state check below).
RTOL, ATOL = 1e-5, 1e-6
STATE_RTOL, STATE_ATOL = 1e-9, 1e-12


def assert_close(actual, desired, rtol: float, atol: float = 0.0, err_msg: str = "") -> None:
    """np.testing.assert_allclose's check, which costs ~0.2 ms a call: the parity loops make ~100k of them, so
    the cheap comparison runs first and numpy's assertion only writes the message of a failure (NaNs too)."""
    actual, desired = np.asarray(actual, dtype=np.float64), np.asarray(desired, dtype=np.float64)
    if actual.shape != desired.shape or not (np.abs(actual - desired) <= atol + rtol * np.abs(desired)).all():
        np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol, err_msg=err_msg)


# ---- per-env knowledge: controllers, reset distributions --------------------------------------------


@dataclass
class Driver:
    """How to pick actions for one env: a controller that reaches the goal (or balances until the
    TimeLimit), used in some episodes, and random actions (possibly beyond the Box bounds)."""

    controller: Callable[[np.ndarray, np.random.Generator], object]
    random_action: Callable[[np.random.Generator], object]


def _box(value: float) -> np.ndarray:
    return np.array([value], dtype=np.float32)


DRIVERS = {
    # Balances for the full 500 steps: exercises truncation.
    "CartPole-v1": Driver(
        controller=lambda s, rng: int(s[2] + 0.5 * s[3] + 0.01 * s[0] + 0.1 * s[1] > 0),
        random_action=lambda rng: int(rng.integers(2)),
    ),
    # Pumps energy into the second joint: reaches the goal in ~100 steps.
    "Acrobot-v1": Driver(
        controller=lambda s, rng: 2 if s[3] > 0 else 0,
        random_action=lambda rng: int(rng.integers(3)),
    ),
    "MountainCar-v0": Driver(
        controller=lambda s, rng: 2 if s[1] >= 0 else 0,
        random_action=lambda rng: int(rng.integers(3)),
    ),
    # Full force (beyond the [-1, 1] bound, so clipped) along the velocity.
    "MountainCarContinuous-v0": Driver(
        controller=lambda s, rng: _box(rng.uniform(0.8, 1.6) * (1.0 if s[1] >= 0 else -1.0)),
        random_action=lambda rng: _box(rng.uniform(-2.0, 2.0)),
    ),
    "Pendulum-v1": Driver(
        controller=lambda s, rng: _box(rng.uniform(-3.0, 3.0)),
        random_action=lambda rng: _box(rng.uniform(-3.0, 3.0)),
    ),
}


def assert_initial_state(name: str, state: list[float]) -> None:
    """A state drawn by the native reset lies in gymnasium's reset distribution's support."""
    s = np.asarray(state)
    if name == "CartPole-v1":
        assert np.all(np.abs(s) <= 0.05), s
    elif name == "Acrobot-v1":
        assert np.all(np.abs(s) <= 0.1), s
        assert np.array_equal(s.astype(np.float32).astype(np.float64), s), "gymnasium rounds it to float32"
    elif name in ("MountainCar-v0", "MountainCarContinuous-v0"):
        assert -0.6 <= s[0] < -0.4 and s[1] == 0.0, s
    elif name == "Pendulum-v1":
        assert abs(s[0]) <= math.pi and abs(s[1]) <= 1.0, s
    else:
        raise AssertionError(name)


def gym_state(env: gym.Env) -> list[float]:
    return [float(v) for v in np.asarray(env.unwrapped.state, dtype=np.float64)]


def to_action_tensor(name: str, actions: list) -> torch.Tensor:
    if isinstance(actions[0], np.ndarray):
        return torch.from_numpy(np.stack(actions).astype(np.float32))  # [N, 1] float32
    # The engine stores discrete actions as float32; the native env must accept that as it is.
    return torch.tensor(actions, dtype=torch.float32)


# ---- parity with gymnasium ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_trajectories_match_gymnasium(name: str) -> None:
    num_envs, total_steps = 4, 3000  # steps per row
    rng = np.random.default_rng(1234)
    driver = DRIVERS[name]
    native = _C.NativeVectorEnv(name, num_envs, 99)
    native.reset()
    gyms = [gym.make(name) for _ in range(num_envs)]

    # Per row: the gymnasium episode in progress and how it is driven.
    use_controller = [False] * num_envs
    rewards_so_far = [0.0] * num_envs
    steps_so_far = [0] * num_envs
    counts = {"episodes": 0, "terminated": 0, "truncated": 0}
    max_error = {"state": 0.0, "obs": 0.0, "reward": 0.0}

    def start_episode(i: int) -> None:
        gyms[i].reset(seed=int(rng.integers(2**31)))
        # MountainCar's reset rarely leads anywhere by chance: sometimes start near the goal instead.
        if name.startswith("MountainCar") and rng.random() < 0.25:
            gyms[i].unwrapped.state = np.array([rng.uniform(0.2, 0.5), rng.uniform(0.0, 0.07)])
        native.set_state(i, gym_state(gyms[i]), 0)
        use_controller[i] = bool(rng.random() < 0.6)
        rewards_so_far[i], steps_so_far[i] = 0.0, 0

    for i in range(num_envs):
        start_episode(i)

    for _ in range(total_steps):
        actions = []
        for i in range(num_envs):
            s = np.asarray(gyms[i].unwrapped.state)
            explore = rng.random() < 0.1
            actions.append(driver.random_action(rng) if explore or not use_controller[i] else driver.controller(s, rng))
        obs, rew, term, trunc, ep_ret, ep_len = (t.numpy() for t in native.step(to_action_tensor(name, actions)))

        for i in range(num_envs):
            g_obs, g_rew, g_term, g_trunc, _ = gyms[i].step(actions[i])
            rewards_so_far[i] += float(g_rew)
            steps_so_far[i] += 1
            where = f"{name} row {i} step {steps_so_far[i]}"
            assert bool(term[i]) == g_term, where
            assert bool(trunc[i]) == g_trunc, where
            assert_close(float(rew[i]), float(g_rew), rtol=RTOL, atol=ATOL, err_msg=where)
            max_error["reward"] = max(max_error["reward"], abs(float(rew[i]) - float(np.float32(g_rew))))

            if g_term or g_trunc:
                counts["episodes"] += 1
                counts["terminated"] += int(g_term)
                counts["truncated"] += int(g_trunc)
                assert_close(float(ep_ret[i]), rewards_so_far[i], rtol=1e-6, err_msg=where)
                assert int(ep_len[i]) == steps_so_far[i], where
                # Auto-reset: the row already shows the first observation of a fresh episode.
                assert native.elapsed_steps(i) == 0
                fresh = native.get_state(i)
                assert_initial_state(name, fresh)
                np.testing.assert_array_equal(obs[i], observation_of(name, fresh), err_msg=where)
                start_episode(i)
            else:
                assert float(ep_ret[i]) == 0.0 and int(ep_len[i]) == 0, where
                assert_close(obs[i], g_obs, rtol=RTOL, atol=ATOL, err_msg=where)
                max_error["obs"] = max(max_error["obs"], float(np.max(np.abs(obs[i] - g_obs))))
                native_state, reference = np.array(native.get_state(i)), np.array(gym_state(gyms[i]))
                assert_close(native_state, reference, rtol=STATE_RTOL, atol=STATE_ATOL, err_msg=where)
                max_error["state"] = max(max_error["state"], float(np.max(np.abs(native_state - reference))))

    print(f"\n{name}: {counts}, max |native - gymnasium|: {max_error}")
    assert counts["episodes"] >= 10
    assert counts["truncated"] >= 2
    if name != "Pendulum-v1":  # Pendulum never terminates
        assert counts["terminated"] >= 5


def observation_of(name: str, state: list[float]) -> np.ndarray:
    """The observation gymnasium's _get_obs makes of a (float64) state."""
    s = np.asarray(state)
    if name == "Acrobot-v1":
        return np.array([np.cos(s[0]), np.sin(s[0]), np.cos(s[1]), np.sin(s[1]), s[2], s[3]], dtype=np.float32)
    if name == "Pendulum-v1":
        return np.array([np.cos(s[0]), np.sin(s[0]), s[1]], dtype=np.float32)
    return s.astype(np.float32)


@pytest.mark.parametrize("name", NAMES)
def test_set_state_mid_episode_continues_exactly(name: str) -> None:
    """Synchronising mid-episode also works: MountainCarContinuous then holds a float32 state (gymnasium
    stores one after every step), which set_state recognises and continues with float32 arithmetic."""
    rng = np.random.default_rng(7)
    driver = DRIVERS[name]
    for episode in range(5):
        reference = gym.make(name)
        reference.reset(seed=episode)
        elapsed = 0
        for _ in range(8):  # the controllers do not end an episode within 8 steps
            _, _, terminated, _, _ = reference.step(driver.controller(np.asarray(reference.unwrapped.state), rng))
            assert not terminated
            elapsed += 1
        native = _C.NativeVectorEnv(name, 1, 0)
        native.reset()
        native.set_state(0, gym_state(reference), elapsed)
        for _ in range(150):
            action = driver.random_action(rng)
            g_obs, g_rew, g_term, g_trunc, _ = reference.step(action)
            obs, rew, term, trunc, _, _ = native.step(to_action_tensor(name, [action]))
            assert (bool(term[0]), bool(trunc[0])) == (g_term, g_trunc)
            assert float(rew[0]) == np.float32(g_rew)
            if g_term or g_trunc:
                break
            np.testing.assert_array_equal(obs[0].numpy(), g_obs)
            assert native.get_state(0) == gym_state(reference)


# ---- spaces and specs --------------------------------------------------------------------------------


def test_native_env_names() -> None:
    # the classic-control envs (gymnasium's, tested here), then the board games (tests/envs/test_board_games.py)
    assert list(_C.native_env_names()) == NAMES + ["ConnectFour-v0"]


@pytest.mark.parametrize("name", NAMES)
def test_spaces_equal_gymnasium(name: str) -> None:
    reference = gym.make(name)
    spec = _C.NativeVectorEnv(name, 2, 0).spec
    assert spec["name"] == name
    assert spec["max_episode_steps"] == reference.spec.max_episode_steps == MAX_EPISODE_STEPS[name]
    assert spec["reward_threshold"] == reference.spec.reward_threshold

    obs_space = reference.observation_space
    native_obs = spec["observation_space"]
    assert native_obs["kind"] == "box" and native_obs["dtype"] == "float32" == str(obs_space.dtype)
    assert tuple(native_obs["shape"]) == obs_space.shape
    np.testing.assert_array_equal(np.array(native_obs["low"], dtype=np.float32), obs_space.low)
    np.testing.assert_array_equal(np.array(native_obs["high"], dtype=np.float32), obs_space.high)
    # The bounds are the float32 values themselves, not float64 neighbours of them.
    assert np.array_equal(np.array(native_obs["high"]), obs_space.high.astype(np.float64))

    act_space = reference.action_space
    native_act = spec["action_space"]
    if isinstance(act_space, gym.spaces.Discrete):
        assert native_act["kind"] == "discrete" and native_act["n"] == act_space.n and act_space.start == 0
        assert native_act["dtype"] == str(act_space.dtype) == "int64"
    else:
        assert native_act["kind"] == "box" and native_act["dtype"] == "float32" == str(act_space.dtype)
        assert tuple(native_act["shape"]) == act_space.shape
        np.testing.assert_array_equal(np.array(native_act["low"], dtype=np.float32), act_space.low)
        np.testing.assert_array_equal(np.array(native_act["high"], dtype=np.float32), act_space.high)


# ---- TimeLimit, auto-reset, bookkeeping ----------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_truncation_at_the_time_limit(name: str) -> None:
    limit = MAX_EPISODE_STEPS[name]
    env = _C.NativeVectorEnv(name, 1, 5)
    env.reset()
    state = env.get_state(0)
    # Two steps before the limit, with a return already earned; a zero action keeps the envs from
    # terminating from their (initial) state within two steps.
    env.set_state(0, state, limit - 2, episode_return=-3.5)
    zero_action = torch.zeros(1, 1)
    _, reward1, term, trunc, _, _ = env.step(zero_action)
    assert not term[0] and not trunc[0] and env.elapsed_steps(0) == limit - 1
    _, reward2, term, trunc, ep_ret, ep_len = env.step(zero_action)
    assert trunc[0] and not term[0]
    assert int(ep_len[0]) == limit
    assert float(ep_ret[0]) == pytest.approx(-3.5 + float(reward1[0]) + float(reward2[0]), rel=1e-6)
    assert env.elapsed_steps(0) == 0
    assert_initial_state(name, env.get_state(0))
    with pytest.raises(ValueError, match="elapsed_steps"):
        env.set_state(0, state, limit)


def test_terminated_and_truncated_on_the_same_step() -> None:
    # gymnasium's TimeLimit flags truncation even when the last step also terminates.
    env = _C.NativeVectorEnv("CartPole-v1", 1, 0)
    env.reset()
    env.set_state(0, [0.0, 0.0, 0.2094, 2.0], 499)
    _, _, term, trunc, _, ep_len = env.step(torch.zeros(1, dtype=torch.int64))
    assert term[0] and trunc[0] and int(ep_len[0]) == 500


@pytest.mark.parametrize("name", NAMES)
def test_reset_distribution(name: str) -> None:
    env = _C.NativeVectorEnv(name, 4096, 3)
    obs = env.reset()
    states = np.array([env.get_state(i) for i in range(env.num_envs)])
    for s in states[:256]:
        assert_initial_state(name, list(s))
    # Uniform draws: the sample means sit near the interval midpoints (5 sigma bounds).
    if name == "CartPole-v1":
        assert np.all(np.abs(states.mean(axis=0)) < 5 * 0.1 / math.sqrt(12 * 4096))
    elif name.startswith("MountainCar"):
        assert abs(states[:, 0].mean() + 0.5) < 5 * 0.2 / math.sqrt(12 * 4096)
    elif name == "Pendulum-v1":
        assert abs(states[:, 0].mean()) < 5 * 2 * math.pi / math.sqrt(12 * 4096)
    assert len(np.unique(states, axis=0)) == env.num_envs  # every env its own draw
    np.testing.assert_array_equal(obs[:256].numpy(), np.stack([observation_of(name, s) for s in states[:256]]))


# ---- seeding -----------------------------------------------------------------------------------------


def _rollout(name: str, num_envs: int, seed: int, steps: int = 300) -> list[torch.Tensor]:
    env = _C.NativeVectorEnv(name, num_envs, seed)
    generator = torch.Generator().manual_seed(0)
    spec = env.spec["action_space"]
    outputs = [env.reset()]
    for _ in range(steps):
        if spec["kind"] == "discrete":
            actions = torch.randint(0, spec["n"], (num_envs,), generator=generator)
        else:
            actions = torch.rand(num_envs, 1, generator=generator) * 2 - 1
        outputs.extend(env.step(actions))
    return outputs


@pytest.mark.parametrize("name", NAMES)
def test_seeding_is_reproducible(name: str) -> None:
    first, again = _rollout(name, 6, 17), _rollout(name, 6, 17)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    other = _rollout(name, 6, 18)
    assert not torch.equal(first[0], other[0])
    initial = first[0]
    assert all(not torch.equal(initial[0], initial[i]) for i in range(1, 6))  # env indices differ


def test_env_i_does_not_depend_on_the_block_size() -> None:
    small = _C.NativeVectorEnv("Acrobot-v1", 2, 7).reset()
    large = _C.NativeVectorEnv("Acrobot-v1", 9, 7).reset()
    assert torch.equal(small, large[:2])


def test_reseeding_repeats_the_initial_states() -> None:
    env = _C.NativeVectorEnv("Pendulum-v1", 3, 1)
    first = env.reset()
    env.seed(1)
    assert torch.equal(env.reset(), first)
    env.seed([5, 6, 7])
    explicit = env.reset()
    assert not torch.equal(explicit, first)
    with pytest.raises(ValueError, match="one seed per env"):
        env.seed([1, 2])


# ---- strided outputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_strided_output_views(name: str) -> None:
    n, steps = 5, 60
    env, twin = _C.NativeVectorEnv(name, n, 21), _C.NativeVectorEnv(name, n, 21)
    dim = env.observation_size
    # Trajectory buffers [N, T, ...] sliced at time t; observations padded by a column on both sides.
    obs_buffer = torch.full((n, steps + 1, dim + 2), -1.0)
    rewards = torch.full((n, steps), -1.0)  # rewards[:, t] has stride `steps`
    flags = torch.zeros(2, n, steps, dtype=torch.bool)
    episode_return = torch.full((n, 2), -9.0)
    episode_length = torch.full((n, 2), -9, dtype=torch.int32)

    env.reset_into(obs_buffer[:, 0, 1 : dim + 1])
    assert torch.equal(obs_buffer[:, 0, 1 : dim + 1], twin.reset())
    spec = env.spec["action_space"]
    actions = torch.randint(0, spec.get("n", 2), (steps, n, 1)).float()
    if spec["kind"] == "box":
        actions = actions - 0.5
    for t in range(steps):
        env.step_into(
            actions[t],
            obs_buffer[:, t + 1, 1 : dim + 1],
            rewards[:, t],
            flags[0, :, t],
            flags[1, :, t],
            episode_return[:, 1],
            episode_length[:, 0],
        )
        obs, rew, term, trunc, ep_ret, ep_len = twin.step(actions[t].contiguous())
        assert torch.equal(obs_buffer[:, t + 1, 1 : dim + 1], obs)
        assert torch.equal(rewards[:, t], rew)
        assert torch.equal(flags[0, :, t], term) and torch.equal(flags[1, :, t], trunc)
        done = term | trunc
        assert torch.equal(episode_return[done, 1], ep_ret[done])
        assert torch.equal(episode_length[done, 0], ep_len[done])
    assert torch.all(obs_buffer[:, :, 0] == -1.0) and torch.all(obs_buffer[:, :, dim + 1] == -1.0)
    assert torch.all(episode_return[:, 0] == -9.0) and torch.all(episode_length[:, 1] == -9)


def test_step_into_without_episode_columns() -> None:
    env = _C.NativeVectorEnv("CartPole-v1", 3, 0)
    obs = torch.empty(3, 4)
    env.reset_into(obs)
    env.step_into(torch.ones(3, dtype=torch.int64), obs, torch.empty(3), torch.empty(3, dtype=torch.bool),
                  torch.empty(3, dtype=torch.bool))
    assert torch.all(torch.isfinite(obs))


# ---- errors ------------------------------------------------------------------------------------------


def test_unknown_name_lists_the_available_ones() -> None:
    with pytest.raises(ValueError, match="no native env named 'LunarLander-v3'; available: CartPole-v1, Acrobot-v1"):
        _C.NativeVectorEnv("LunarLander-v3", 1, 0)


def test_bad_actions_raise_value_error_and_change_nothing() -> None:
    env = _C.NativeVectorEnv("Acrobot-v1", 4, 0)
    env.reset()
    before = [env.get_state(i) for i in range(4)]
    cases = [
        (torch.tensor([0, 1, 3, 0]), "Acrobot-v1: invalid action 3 for env 2"),
        (torch.tensor([0, -1, 0, 0]), "invalid action -1 for env 1"),
        (torch.tensor([0.0, 1.0, 2.0, 1.5]), "invalid action 1.5 for env 3"),
        (torch.tensor([[float("nan")], [0.0], [0.0], [0.0]]), "invalid action nan for env 0"),
        (torch.zeros(3, dtype=torch.int64), r"shape \[4\] or \[4, 1\]"),
        (torch.zeros(4, 2), r"shape \[4\] or \[4, 1\]"),
        (torch.zeros(4, dtype=torch.bool), "dtype int64, int32, float32 or float64"),
    ]
    for actions, message in cases:
        with pytest.raises(ValueError, match=message):
            env.step(actions)
    assert [env.get_state(i) for i in range(4)] == before
    assert all(env.elapsed_steps(i) == 0 for i in range(4))

    box = _C.NativeVectorEnv("Pendulum-v1", 2, 0)
    box.reset()
    with pytest.raises(ValueError, match=r"Pendulum-v1: actions for Box\(-2, 2, \(1,\), float32\)"):
        box.step(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="float32 or float64"):
        box.step(torch.zeros(2, 1, dtype=torch.int64))
    box.step(torch.zeros(2))  # [N] is fine for a one-element Box
    box.step(torch.zeros(2, 1, dtype=torch.float64))


def test_bad_outputs_and_indices() -> None:
    env = _C.NativeVectorEnv("MountainCar-v0", 2, 0)
    with pytest.raises(RuntimeError, match="before the first reset"):
        env.step(torch.zeros(2, dtype=torch.int64))
    env.reset()
    with pytest.raises(ValueError, match=r"StepOutput.obs must be a CPU float32 tensor of shape \[2, 2\]"):
        env.reset_into(torch.zeros(2, 3))
    good = dict(obs=torch.zeros(2, 2), rewards=torch.zeros(2), terminated=torch.zeros(2, dtype=torch.bool),
                truncated=torch.zeros(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="StepOutput.rewards"):
        env.step_into(torch.zeros(2), **{**good, "rewards": torch.zeros(2, dtype=torch.float64)})
    with pytest.raises(ValueError, match="StepOutput.episode_length"):
        env.step_into(torch.zeros(2), **good, episode_length=torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="StepOutput.truncated"):
        env.step_into(torch.zeros(2), **{**good, "truncated": torch.zeros(1, dtype=torch.bool).expand(2)})
    with pytest.raises(IndexError, match="env index 2"):
        env.get_state(2)
    with pytest.raises(ValueError, match="needs 2 state values"):
        env.set_state(0, [0.0], 0)
    with pytest.raises(ValueError, match="num_envs"):
        _C.NativeVectorEnv("MountainCar-v0", 0, 0)


def test_repr_and_properties() -> None:
    env = _C.NativeVectorEnv("Pendulum-v1", 3, 0)
    assert repr(env) == "NativeVectorEnv(Pendulum-v1, num_envs=3)"
    assert (env.name, env.num_envs, env.observation_size, env.state_size) == ("Pendulum-v1", 3, 3, 2)
