"""Instrumented gymnasium envs for the sampler tests (module-level so env worker processes can import them)."""

from __future__ import annotations

import os
import signal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pysf.envs.env_utils import TrainingInfoInterface


class CountingEnv(gym.Env):
    """Observation ``[env_id, counter, episode_step]``; ``counter`` counts every step of this env ever taken.

    Episodes terminate after ``4 + env_id % 5`` steps, so episode ends fall inside and across rollouts.
    """

    def __init__(self, env_id: int = 0, fail_after: int = -1, failure: str = "raise"):
        self.observation_space = spaces.Box(0, np.inf, (3,), dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        self.env_id = env_id
        self.counter = 0
        self.episode_step = 0
        self.episode_length = 4 + env_id % 5
        self.fail_after = fail_after
        self.failure = failure

    def _obs(self):
        return np.array([self.env_id, self.counter, self.episode_step], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode_step = 0
        return self._obs(), {}

    def step(self, action):
        assert self.action_space.contains(action), action
        self.counter += 1
        self.episode_step += 1
        if 0 <= self.fail_after <= self.counter:
            return self._fail()
        terminated = self.episode_step >= self.episode_length
        info = {"episode_extra_stats": {"last_counter": float(self.counter)}} if terminated else {}
        return self._obs(), 1.0, terminated, False, info

    def _fail(self):
        if self.failure == "raise":
            raise RuntimeError(f"CountingEnv {self.env_id} exploded on purpose")
        if self.failure == "shape":
            return np.zeros(5, dtype=np.float32), 1.0, False, False, {}
        if self.failure == "nan":
            return np.array([np.nan, 0, 0], dtype=np.float32), 1.0, False, False, {}
        if self.failure == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.failure == "hang":
            import time

            time.sleep(3600)
        raise ValueError(self.failure)


def make_counting_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    env_id = 0 if env_config is None else env_config.env_id
    return CountingEnv(env_id)


def make_faulty_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    env_id = 0 if env_config is None else env_config.env_id
    failure = full_env_name.split("_")[-1]
    # Only one env fails, after a few steps, to check the error names the right worker.
    return CountingEnv(env_id, fail_after=30 if env_id == 5 else -1, failure=failure)


class WalkEnv(CountingEnv):
    """Episodes of a fixed ``EPISODE_LENGTH`` steps in every env, ended by truncation, without extra info.

    Observation ``[env_id, counter, episode_step, position]``: ``position`` is the running sum of
    ``action - 1`` over every step ever taken, so it reflects the actions of a decorrelation warm-up.
    """

    EPISODE_LENGTH = 40

    def __init__(self, env_id: int = 0):
        super().__init__(env_id)
        self.observation_space = spaces.Box(-np.inf, np.inf, (4,), dtype=np.float32)
        self.episode_length = self.EPISODE_LENGTH
        self.position = 0

    def _obs(self):
        return np.array([self.env_id, self.counter, self.episode_step, self.position], dtype=np.float32)

    def step(self, action):
        self.position += int(action) - 1
        obs, reward, terminated, _, _ = super().step(action)
        return obs, reward, False, terminated, {}


def make_walk_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    return WalkEnv(0 if env_config is None else env_config.env_id)


def make_early_faulty_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    """Env 5 (worker 1, second env of its worker) raises at its 3rd step: inside its decorrelation warm-up."""
    env_id = 0 if env_config is None else env_config.env_id
    return CountingEnv(env_id, fail_after=3 if env_id == 5 else -1, failure="raise")


class SlowEnv(CountingEnv):
    """A CountingEnv whose steps take ``cfg.slow_env_step_seconds``; env 1 touches ``cfg.slow_env_marker``
    at its first step (a sign that the worker is taking steps)."""

    def __init__(self, env_id: int, step_seconds: float, marker: str):
        super().__init__(env_id)
        self.step_seconds = step_seconds
        self.marker = marker

    def step(self, action):
        import time

        if self.env_id == 1 and self.counter == 0:
            open(self.marker, "w").close()
        time.sleep(self.step_seconds)
        return super().step(action)


def make_slow_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    env_id = 0 if env_config is None else env_config.env_id
    return SlowEnv(env_id, cfg.slow_env_step_seconds, cfg.slow_env_marker)


class FixedLengthEnv(gym.Env):
    """Reward 1 per step; episodes of ``episode_len + 1`` steps (as Sample Factory's custom example env counts)."""

    def __init__(self, episode_len: int = 1000):
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.episode_len = episode_len
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        done = self.steps >= self.episode_len
        self.steps += 1
        return np.zeros(2, dtype=np.float32), 1.0, done, False, {}


def make_fixed_length_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    return FixedLengthEnv(int(full_env_name.rsplit("_", 1)[-1]))


class PolicyReportingEnv(FixedLengthEnv, TrainingInfoInterface):
    """A FixedLengthEnv of 10 steps whose finished episodes report the ``policy_id`` of the training info it last
    received (``episode_extra_stats["policy_seen"]``; -1 before any)."""

    def __init__(self):
        FixedLengthEnv.__init__(self, 9)
        TrainingInfoInterface.__init__(self)

    def step(self, action):
        obs, reward, done, truncated, info = super().step(action)
        if done:
            info = {"episode_extra_stats": {"policy_seen": float(self.training_info.get("policy_id", -1))}}
        return obs, reward, done, truncated, info


def make_policy_reporting_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    return PolicyReportingEnv()


class ThreadReportingEnv(FixedLengthEnv):
    """Reports, per episode, how many threads the BLAS/OpenMP pools of its process may use."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        if terminated:
            from threadpoolctl import threadpool_info

            pools = threadpool_info()
            threads = max((p["num_threads"] for p in pools), default=1)
            info = {"episode_extra_stats": {"pool_threads": float(threads)}}
        return obs, reward, terminated, truncated, info


def make_thread_reporting_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    return ThreadReportingEnv(20)


class _CountingAgentsEnv(gym.Env):
    """What the multi-agent test envs share: ``num_agents`` agents observing 4 values, 3 actions, a step counter."""

    NUM_AGENTS = 1

    def __init__(self, env_id: int = 0):
        self.observation_space = spaces.Box(0, np.inf, (4,), dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        self.num_agents = self.NUM_AGENTS
        self.is_multiagent = True
        self.env_id = env_id
        self.counter = 0


class MultiAgentCountingEnv(_CountingAgentsEnv):
    """A multi-agent env with Sample Factory's contract (one entry per agent in and out, resets itself).

    Agent ``a`` observes ``[env_id, a, counter, episode_step]``, where ``counter`` counts every step of the env
    ever taken; its reward is ``a + 1`` per step. Episodes last ``3 + env_id % 4`` steps for all agents. Agent 1
    reports itself inactive (``info["is_active"] = False``) after the steps that take ``counter`` to 3 or 4
    (mod 7). Agent 2's finished episodes carry an extra statistic, the others' do not.
    """

    NUM_AGENTS = 3

    def __init__(self, env_id: int = 0):
        super().__init__(env_id)
        self.episode_step = 0
        self.episode_length = 3 + env_id % 4

    def _obs(self):
        return [np.array([self.env_id, a, self.counter, self.episode_step], dtype=np.float32) for a in range(self.num_agents)]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode_step = 0
        return self._obs(), [{} for _ in range(self.num_agents)]

    def step(self, actions):
        assert len(actions) == self.num_agents and all(self.action_space.contains(a) for a in actions), actions
        self.counter += 1
        self.episode_step += 1
        terminated = self.episode_step >= self.episode_length
        infos = [{} for _ in range(self.num_agents)]
        infos[1]["is_active"] = self.counter % 7 not in (3, 4)
        if terminated:
            infos[2]["episode_extra_stats"] = {"agent_counter": float(self.counter)}
            self.episode_step = 0  # resets itself: the observation returned is the next episode's first
        rewards = np.arange(1, self.num_agents + 1, dtype=np.float32)  # an array per env, as SF allows
        return self._obs(), rewards, [terminated] * self.num_agents, [False] * self.num_agents, infos


def make_multi_agent_counting_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    return MultiAgentCountingEnv(0 if env_config is None else env_config.env_id)


class DuelEnv(_CountingAgentsEnv):
    """A two-player game (two agents) that agent 0 always wins: each game lasts 4 steps and ends with +1 for agent 0,
    -1 for agent 1. Agent 0's finished episodes carry an extra statistic (so they reach the runner through the
    workers' stats queue), agent 1's do not (a mailbox record)."""

    NUM_AGENTS = 2

    def __init__(self, env_id: int = 0):
        super().__init__(env_id)
        self.episode_step = 0

    def _obs(self):
        return [np.array([self.env_id, a, self.counter, self.episode_step], dtype=np.float32) for a in range(2)]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode_step = 0
        return self._obs(), [{}, {}]

    def step(self, actions):
        self.counter += 1
        self.episode_step += 1
        over = self.episode_step >= 4
        infos = [{}, {}]
        rewards = [0.0, 0.0]
        if over:
            rewards = [1.0, -1.0]
            infos[0]["episode_extra_stats"] = {"game": float(self.counter // 4)}
            self.episode_step = 0
        return self._obs(), rewards, [over, over], [False, False], infos


def make_duel_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    return DuelEnv(0 if env_config is None else env_config.env_id)


class VectorizedCountingEnv(_CountingAgentsEnv):
    """A natively vectorized env, the way Sample Factory's batched sampling sees one (EnvPool, IsaacGym): its
    ``num_agents`` are independent envs stepped as one batch, returning ``[num_agents, ...]`` arrays and a dict of
    per-agent arrays as infos, each sub-env resetting itself.

    Sub-env ``k`` of env ``env_id`` observes ``[env_id, k, counter, episode_step]``; episodes of ``2 + k``
    steps; reward ``k + 1``; ``info["episode_counter"][k]`` counts its finished episodes.
    """

    NUM_AGENTS = 4

    def __init__(self, env_id: int = 0):
        super().__init__(env_id)
        self.episode_step = np.zeros(self.num_agents, dtype=np.int64)
        self.episodes = np.zeros(self.num_agents, dtype=np.int64)
        self.lengths = 2 + np.arange(self.num_agents)

    def _obs(self):
        k = np.arange(self.num_agents)
        return np.stack([np.full(self.num_agents, self.env_id), k, np.full(self.num_agents, self.counter),
                         self.episode_step], axis=1).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode_step[:] = 0
        return self._obs(), {}

    def step(self, actions):
        assert actions.shape == (self.num_agents,) and actions.dtype == np.int32, (actions.shape, actions.dtype)
        assert np.all((0 <= actions) & (actions < 3)), actions
        self.counter += 1
        self.episode_step += 1
        terminated = self.episode_step >= self.lengths
        self.episodes += terminated
        self.episode_step[terminated] = 0
        rewards = np.arange(1, self.num_agents + 1, dtype=np.float32)
        return self._obs(), rewards, terminated, np.zeros(self.num_agents, dtype=bool), {"episode_counter": self.episodes.copy()}


def make_vectorized_counting_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    return VectorizedCountingEnv(0 if env_config is None else env_config.env_id)


def make_counting_vector_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    """A gymnasium SyncVectorEnv of 3 CountingEnvs (ids ``3 * env_id + k``), its autoreset mode the name's suffix
    after ``__`` (``SameStep``, ``Disabled`` or ``NextStep``)."""
    first = 0 if env_config is None else env_config.env_id * 3
    fns = [lambda k=k: CountingEnv(first + k) for k in range(3)]
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=full_env_name.rsplit("__", 1)[1])


class NextStepCountingVectorEnv(gym.vector.VectorEnv):
    """A vector env of 3 CountingEnvs that is none of gymnasium's and declares autoreset mode NEXT_STEP: pysf
    refuses it before it steps, so it has no step()."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(self):
        self.num_envs = 3
        self.envs = [CountingEnv(k) for k in range(self.num_envs)]
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space


def make_envpool_cartpole(full_env_name, cfg=None, env_config=None, render_mode=None):
    """EnvPool's CartPole-v1, 4 envs, seeded from the env id as EnvPool wants (at creation)."""
    import envpool

    seed = 0 if env_config is None else env_config.env_id
    return envpool.make("CartPole-v1", env_type="gymnasium", num_envs=4, num_threads=1, seed=seed)


def make_pong_vector_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    """ale_py's AtariVectorEnv: 2 Pong sub-envs (84x84x4 grayscale, frameskip 4), reset in the step that ends them."""
    from ale_py.vector_env import AtariVectorEnv

    return AtariVectorEnv("pong", num_envs=2, num_threads=1, autoreset_mode="SameStep")
