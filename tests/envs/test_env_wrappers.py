"""pysf.envs.env_wrappers: Sample Factory's standard wrappers, checked on small scripted gymnasium envs.

Each fake env records what it was asked to do (actions, resets), and produces observations and rewards
from a script, so that every test can check the exact behaviour. OpenCV-based wrappers skip without cv2;
the Atari stack check skips without ale_py (and cv2, which gymnasium's ResizeObservation needs).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, List, Optional

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from pysf.envs.env_wrappers import (
    ClipRewardEnv,
    EpisodeCounterWrapper,
    EpisodicLifeEnv,
    FireResetEnv,
    MaxAndSkipEnv,
    NoopResetEnv,
    NumpyObsWrapper,
    PixelFormatChwWrapper,
    RecordingWrapper,
    ResizeWrapper,
    RewardScalingWrapper,
    TimeLimitWrapper,
    has_image_observations,
)

H, W = 6, 8


def frame(value: int, shape=(H, W, 3)) -> np.ndarray:
    """Frame number ``value``: fixed pseudo-random pixels, so that of two frames neither is the pixel-wise max."""
    return np.random.default_rng(value).integers(0, 256, size=shape, dtype=np.uint8)


class ScriptedEnv(gym.Env):
    """A deterministic env: step ``t`` returns ``frame(t)`` and ``rewards[t-1]``; episodes end at ``episode_len``.

    Records every action and every reset; ``info`` carries the step index.
    """

    metadata: Dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        episode_len: int = 100,
        rewards: Optional[List[float]] = None,
        obs_shape=(H, W, 3),
        num_actions: int = 4,
        info_extra: Optional[Dict[str, Any]] = None,
    ):
        self.observation_space = spaces.Box(0, 255, obs_shape, dtype=np.uint8)
        self.action_space = spaces.Discrete(num_actions)
        self.episode_len = episode_len
        self.rewards = rewards
        self.obs_shape = obs_shape
        self.info_extra = info_extra or {}
        self.t = 0
        self.actions: List[Any] = []
        self.num_resets = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.num_resets += 1
        return frame(0, self.obs_shape), {"t": 0}

    def step(self, action):
        self.actions.append(action)
        self.t += 1
        reward = self.rewards[(self.t - 1) % len(self.rewards)] if self.rewards else 0.0
        terminated = self.t >= self.episode_len
        return frame(self.t, self.obs_shape), reward, terminated, False, {"t": self.t, **self.info_extra}


class FakeAle:
    def __init__(self):
        self.num_lives = 3

    def lives(self) -> int:
        return self.num_lives


class FakeAtariEnv(ScriptedEnv):
    """ScriptedEnv with ALE's action meanings and a lives counter that follows ``lives_script[t]`` when given."""

    def __init__(self, meanings=("NOOP", "FIRE", "RIGHT", "LEFT"), lives_script=None, start_lives=3, **kwargs):
        super().__init__(num_actions=len(meanings), **kwargs)
        self._meanings = list(meanings)
        self.ale = FakeAle()
        self.lives_script = lives_script or {}
        self.start_lives = start_lives

    def get_action_meanings(self):
        return self._meanings

    def reset(self, *, seed=None, options=None):
        self.ale.num_lives = self.start_lives
        return super().reset(seed=seed, options=options)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        if self.t in self.lives_script:
            self.ale.num_lives = self.lives_script[self.t]
        return obs, reward, terminated, truncated, info


# --------------------------------------------------------------------------------------------------------------
# Atari stack
# --------------------------------------------------------------------------------------------------------------


def test_max_and_skip_repeats_the_action_sums_rewards_and_maxes_the_last_two_frames():
    base = ScriptedEnv(rewards=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    env = MaxAndSkipEnv(base, skip=4)
    env.reset(seed=0)

    obs, reward, terminated, truncated, info = env.step(2)
    assert base.actions == [2, 2, 2, 2]
    assert reward == 1.0 + 2.0 + 3.0 + 4.0
    np.testing.assert_array_equal(obs, np.maximum(frame(3), frame(4)))
    # The max differs from both frames: the test would catch returning either one.
    assert not np.array_equal(obs, frame(3)) and not np.array_equal(obs, frame(4))
    assert info["t"] == 4 and not terminated and not truncated
    assert obs.dtype == np.uint8 and env.observation_space.contains(obs)

    obs, reward, *_ = env.step(1)
    assert base.actions[4:] == [1, 1, 1, 1] and reward == 5.0 + 6.0 + 7.0 + 8.0
    np.testing.assert_array_equal(obs, np.maximum(frame(7), frame(8)))


def test_max_and_skip_stops_at_the_episode_end():
    base = ScriptedEnv(episode_len=6, rewards=[1.0])
    env = MaxAndSkipEnv(base, skip=4)
    env.reset()
    env.step(0)
    _, reward, terminated, _, info = env.step(0)
    assert terminated and info["t"] == 6 and len(base.actions) == 6
    assert reward == 2.0  # only the two steps left in the episode


def test_max_and_skip_with_skip_1_returns_each_frame():
    env = MaxAndSkipEnv(ScriptedEnv(), skip=1)
    env.reset()
    for t in (1, 2):
        obs, *_ = env.step(0)
        np.testing.assert_array_equal(obs, frame(t))
    with pytest.raises(ValueError, match="skip must be >= 1"):
        MaxAndSkipEnv(ScriptedEnv(), skip=0)


def test_noop_reset_takes_the_overridden_number_of_noops():
    base = FakeAtariEnv()
    env = NoopResetEnv(base, noop_max=30)
    env.override_num_noops = 7
    obs, info = env.reset(seed=1)
    assert base.actions == [0] * 7
    np.testing.assert_array_equal(obs, frame(7))
    assert info["t"] == 7


def test_noop_reset_draws_1_to_noop_max_noops_reproducibly_from_the_seed():
    counts = []
    for seed in range(40):
        base = FakeAtariEnv()
        env = NoopResetEnv(base, noop_max=5)
        env.reset(seed=seed)
        counts.append(len(base.actions))
        again = FakeAtariEnv()
        NoopResetEnv(again, noop_max=5).reset(seed=seed)
        assert len(again.actions) == counts[-1]
    assert set(counts) <= set(range(1, 6))
    assert len(set(counts)) > 1


def test_noop_reset_resets_again_when_the_episode_ends_during_the_noops():
    base = FakeAtariEnv(episode_len=3)
    env = NoopResetEnv(base)
    env.override_num_noops = 5
    obs, _ = env.reset()
    # 3 noops end the episode -> reset, then 2 more noops.
    assert base.num_resets == 2 and len(base.actions) == 5
    np.testing.assert_array_equal(obs, frame(2))


def test_noop_and_fire_reset_refuse_envs_without_the_atari_actions():
    with pytest.raises(ValueError, match="action 0 to be 'NOOP'"):
        NoopResetEnv(FakeAtariEnv(meanings=("FIRE", "NOOP", "LEFT")))
    with pytest.raises(ValueError, match="action 1 = 'FIRE'"):
        FireResetEnv(FakeAtariEnv(meanings=("NOOP", "RIGHT", "LEFT")))
    with pytest.raises(ValueError, match="at least 3 actions"):
        FireResetEnv(FakeAtariEnv(meanings=("NOOP", "FIRE")))
    with pytest.raises(ValueError, match="get_action_meanings"):
        NoopResetEnv(ScriptedEnv())


def test_fire_reset_fires_then_takes_action_2():
    base = FakeAtariEnv()
    env = FireResetEnv(base)
    obs, info = env.reset()
    assert base.actions == [1, 2] and base.num_resets == 1
    np.testing.assert_array_equal(obs, frame(2))
    assert info["t"] == 2


def test_fire_reset_resets_again_when_firing_ends_the_episode():
    base = FakeAtariEnv(episode_len=1)
    obs, _ = FireResetEnv(base).reset()
    # FIRE ends the episode -> reset; action 2 ends it again -> reset: the reset observation comes back.
    assert base.actions == [1, 2] and base.num_resets == 3
    np.testing.assert_array_equal(obs, frame(0))


def test_episodic_life_terminates_on_a_lost_life_and_resets_the_game_only_at_game_over():
    base = FakeAtariEnv(episode_len=10, lives_script={3: 2, 5: 3, 7: 2, 9: 0})
    env = EpisodicLifeEnv(base)
    env.reset()
    assert env.lives == 3 and env.was_real_done

    results = [env.step(2)[2] for _ in range(3)]
    assert results == [False, False, True]  # life 3 -> 2 at step 3
    assert not env.was_real_done

    obs, info = env.reset()  # not game over: a no-op step instead of a reset
    assert base.num_resets == 1 and base.actions[-1] == 0 and info["t"] == 4
    np.testing.assert_array_equal(obs, frame(4))

    assert env.step(2)[2] is False  # step 5: bonus life 2 -> 3, no termination
    assert env.step(2)[2] is False
    assert env.step(2)[2] is True  # step 7: 3 -> 2
    env.reset()  # step 8 (no-op)
    # Step 9: lives drop to 0 -- not a life loss to report (the game ends on its own), step 10: game over.
    assert env.step(2)[2] is False
    _, _, terminated, _, _ = env.step(2)
    assert terminated and env.was_real_done
    env.reset()
    assert base.num_resets == 2 and env.lives == 3


def test_episodic_life_refuses_envs_without_ale():
    with pytest.raises(ValueError, match="ale.lives"):
        EpisodicLifeEnv(ScriptedEnv())


def test_clip_reward_takes_the_sign():
    env = ClipRewardEnv(ScriptedEnv(rewards=[5.0, -0.25, 0.0, 3, -7]))
    env.reset()
    assert [env.step(0)[1] for _ in range(5)] == [1.0, -1.0, 0.0, 1.0, -1.0]


class FakeLazyFrames:
    """Like gymnasium 0.x's LazyFrames: array-like through ``__array__`` only."""

    def __init__(self, frames):
        self._frames = frames

    def __array__(self, dtype=None, copy=None):
        out = np.stack(self._frames)
        return out if dtype is None else out.astype(dtype)


class LazyObsEnv(ScriptedEnv):
    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed)
        return FakeLazyFrames([obs, obs]), info

    def step(self, action):
        obs, *rest = super().step(action)
        return (FakeLazyFrames([frame(self.t - 1), obs]), *rest)


def test_numpy_obs_wrapper_converts_array_likes():
    env = NumpyObsWrapper(LazyObsEnv())
    obs, _ = env.reset()
    assert type(obs) is np.ndarray and obs.shape == (2, H, W, 3)
    obs, *_ = env.step(0)
    np.testing.assert_array_equal(obs, np.stack([frame(0), frame(1)]))
    plain = np.zeros(3)
    converted = env.observation(plain)
    assert converted is not plain and np.array_equal(converted, plain)


# --------------------------------------------------------------------------------------------------------------
# Rewards and episodes
# --------------------------------------------------------------------------------------------------------------


def test_reward_scaling_multiplies_rewards():
    env = RewardScalingWrapper(ScriptedEnv(rewards=[2.0, -4.0]), 0.5)
    env.reset()
    assert [env.step(0)[1] for _ in range(2)] == [1.0, -2.0]
    assert not hasattr(env, "reward_range")  # gymnasium 1.x envs declare no reward range


def test_reward_scaling_scales_a_declared_reward_range():
    base = ScriptedEnv()
    base.reward_range = (-1.0, 4.0)
    assert RewardScalingWrapper(base, 0.5).reward_range == (-0.5, 2.0)
    assert RewardScalingWrapper(base, -2.0).reward_range == (-8.0, 2.0)


def test_time_limit_truncates_at_the_limit_and_counts_again_after_reset():
    env = TimeLimitWrapper(ScriptedEnv(), limit=5)
    for _ in range(2):
        env.reset()
        truncations = [env.step(0)[3] for _ in range(5)]
        assert truncations == [False, False, False, False, True]


def test_time_limit_counts_frames_reported_in_info():
    env = TimeLimitWrapper(ScriptedEnv(info_extra={"num_frames": 4}), limit=10)
    env.reset()
    assert [env.step(0)[3] for _ in range(3)] == [False, False, True]  # 4, 8, 12 frames


def test_time_limit_leaves_env_ends_alone():
    env = TimeLimitWrapper(ScriptedEnv(episode_len=3), limit=3)
    env.reset()
    _, _, terminated, truncated, _ = [env.step(0) for _ in range(3)][-1]
    assert terminated and not truncated


def test_time_limit_random_variation_draws_each_reset_within_the_range():
    np.random.seed(0)
    env = TimeLimitWrapper(ScriptedEnv(), limit=10, random_variation_steps=3)
    lengths = set()
    for _ in range(30):
        env.reset()
        n = 1
        while not env.step(0)[3]:
            n += 1
        lengths.add(n)
    assert lengths <= set(range(7, 14)) and len(lengths) > 2
    with pytest.raises(ValueError, match="random_variation_steps"):
        TimeLimitWrapper(ScriptedEnv(), limit=10, random_variation_steps=-1)


def test_episode_counter_numbers_finished_episodes_and_keeps_other_extra_stats():
    base = ScriptedEnv(episode_len=2, info_extra={"episode_extra_stats": {"kills": 3}})
    env = EpisodeCounterWrapper(base)
    numbers = []
    for _ in range(3):
        env.reset()
        _, _, terminated, _, info = env.step(0)
        assert not terminated and info["episode_extra_stats"] == {"kills": 3}
        _, _, terminated, _, info = env.step(0)
        assert terminated
        assert info["episode_extra_stats"]["kills"] == 3
        numbers.append(info["episode_extra_stats"]["episode_number"])
    assert numbers == [0, 1, 2] and env.episode_count == 3
    assert base.info_extra["episode_extra_stats"] == {"kills": 3}  # the env's own dict is not modified


def test_episode_counter_counts_truncated_episodes():
    env = EpisodeCounterWrapper(TimeLimitWrapper(ScriptedEnv(), limit=1))
    env.reset()
    info = env.step(0)[4]
    assert info["episode_extra_stats"] == {"episode_number": 0}


# --------------------------------------------------------------------------------------------------------------
# Image observations
# --------------------------------------------------------------------------------------------------------------


def test_has_image_observations():
    assert has_image_observations(spaces.Box(0, 1, (4, 4)))
    assert not has_image_observations(spaces.Box(0, 1, (4,)))


def test_pixel_format_chw_transposes_obs_and_space():
    low = np.zeros((H, W, 3), dtype=np.uint8)
    high = np.full((H, W, 3), 255, dtype=np.uint8)
    high[..., 2] = 100  # per-channel bounds must follow the transpose
    base = ScriptedEnv()
    base.observation_space = spaces.Box(low, high, dtype=np.uint8)
    env = PixelFormatChwWrapper(base)
    assert env.observation_space.shape == (3, H, W) and env.observation_space.dtype == np.uint8
    assert env.observation_space.high[2].max() == 100 and env.observation_space.high[0].min() == 255
    env.reset()
    obs, *_ = env.step(0)
    np.testing.assert_array_equal(obs, frame(1).transpose(2, 0, 1))
    assert obs[1, 2, 3] == frame(1)[2, 3, 1]


class DictObsEnv(ScriptedEnv):
    def __init__(self):
        super().__init__()
        self.image_space = self.observation_space
        self.observation_space = spaces.Dict(
            {"obs": self.image_space, "measurements": spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)}
        )

    def _wrap(self, img):
        return {"obs": img, "measurements": np.array([0.5, -0.5], dtype=np.float32)}

    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed)
        return self._wrap(obs), info

    def step(self, action):
        obs, *rest = super().step(action)
        self.last_obs = self._wrap(obs)
        return (self.last_obs, *rest)


def test_pixel_format_chw_on_dict_obs_leaves_the_env_space_and_obs_alone():
    base = DictObsEnv()
    env = PixelFormatChwWrapper(base)
    assert env.observation_space["obs"].shape == (3, H, W)
    assert env.observation_space["measurements"] is base.observation_space["measurements"]
    assert base.observation_space["obs"].shape == (H, W, 3)
    env.reset()
    obs, *_ = env.step(0)
    assert obs["obs"].shape == (3, H, W) and env.observation_space.contains(obs)
    assert base.last_obs["obs"].shape == (H, W, 3)


@pytest.mark.parametrize(
    "shape, message",
    [((5,), "only works with image"), ((H, W), "channel dimension"), ((3, H, W), "CHW already")],
)
def test_pixel_format_chw_refuses_non_hwc_spaces(shape, message):
    with pytest.raises(ValueError, match=message):
        PixelFormatChwWrapper(ScriptedEnv(obs_shape=shape))


def test_opencv_wrappers_name_the_package_when_cv2_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` raise ImportError
    with pytest.raises(ImportError, match="ResizeWrapper needs OpenCV.*pip install opencv-python-headless"):
        ResizeWrapper(ScriptedEnv(), 4, 3)
    with pytest.raises(ImportError, match="RecordingWrapper needs OpenCV.*opencv-python-headless"):
        RecordingWrapper(ScriptedEnv(), "/nonexistent", 0)


@pytest.mark.parametrize(
    "grayscale, add_channel_dim, in_shape, out_shape",
    [
        (True, False, (H, W, 3), (3, 4)),
        (True, True, (H, W, 3), (3, 4, 1)),
        (False, False, (H, W, 3), (3, 4, 3)),
        (False, True, (H, W, 3), (3, 4, 3)),
        (False, False, (H, W), (3, 4)),
        (False, True, (H, W), (3, 4, 1)),
        (True, False, (H, W, 1), (3, 4)),
        (False, False, (H, W, 1), (3, 4, 1)),
    ],
)
def test_resize_shapes_match_the_space(grayscale, add_channel_dim, in_shape, out_shape):
    pytest.importorskip("cv2")
    env = ResizeWrapper(ScriptedEnv(obs_shape=in_shape), w=4, h=3, grayscale=grayscale, add_channel_dim=add_channel_dim)
    assert env.observation_space.shape == out_shape and env.observation_space.dtype == np.uint8
    obs, _ = env.reset()
    assert obs.shape == out_shape and obs.dtype == np.uint8
    obs, *_ = env.step(0)
    assert env.observation_space.contains(obs)


def test_resize_nearest_and_area_interpolation_and_grayscale_values():
    cv2 = pytest.importorskip("cv2")
    base = ScriptedEnv(obs_shape=(4, 4, 3))
    img = np.zeros((4, 4, 3), dtype=np.uint8)
    img[:2, :2] = (255, 0, 0)  # red top-left quadrant
    img[2:, 2:] = (0, 0, 255)  # blue bottom-right quadrant

    color = ResizeWrapper(base, w=2, h=2, grayscale=False)
    np.testing.assert_array_equal(color._observation(img), img[::2, ::2])

    area = ResizeWrapper(base, w=1, h=1, grayscale=False, area_interpolation=True)
    assert area.interpolation == cv2.INTER_AREA
    np.testing.assert_array_equal(area._observation(img)[0, 0], np.round(img.reshape(-1, 3).mean(axis=0)))

    gray = ResizeWrapper(base, w=2, h=2)
    out = gray._observation(img)
    # OpenCV's RGB -> gray weights: 0.299 R + 0.587 G + 0.114 B.
    np.testing.assert_array_equal(out, np.array([[76, 0], [0, 29]], dtype=np.uint8))


def test_resize_dict_obs_resizes_images_only():
    pytest.importorskip("cv2")
    env = ResizeWrapper(DictObsEnv(), w=4, h=3)
    assert env.observation_space["obs"].shape == (3, 4)
    assert env.observation_space["measurements"].shape == (2,)
    obs, _ = env.reset()
    assert obs["obs"].shape == (3, 4)
    np.testing.assert_array_equal(obs["measurements"], [0.5, -0.5])
    assert env.observation_space.contains(obs)


def test_resize_refuses_non_images():
    pytest.importorskip("cv2")
    with pytest.raises(ValueError, match="image observations"):
        ResizeWrapper(ScriptedEnv(obs_shape=(5,)), w=4, h=3)


class ShapingEnv(ScriptedEnv):
    _total_shaping_reward = 0.25


def test_recording_writes_frames_actions_and_renames_finished_episodes(tmp_path):
    cv2 = pytest.importorskip("cv2")
    base = ShapingEnv(episode_len=3, rewards=[1.0, 0.5, 2.0])
    env = RecordingWrapper(base, str(tmp_path), player_id=3)
    assert base.record_to == str(tmp_path)

    env.reset()
    env.step(np.int64(1))
    env.step(np.array([0.5, -1.0]))
    env.step((np.int64(2), 3))
    assert sorted(os.listdir(tmp_path)) == ["ep_000_p3"]  # finished only by the next reset
    env.reset()
    env.step(0)
    env.reset()

    assert sorted(os.listdir(tmp_path)) == ["ep_000_p3_r3.75", "ep_001_p3_r1.25", "ep_002_p3"]
    first = tmp_path / "ep_000_p3_r3.75"
    assert sorted(os.listdir(first)) == ["00000.png", "00001.png", "00002.png", "actions.json"]
    assert json.loads((first / "actions.json").read_text()) == [1, [0.5, -1.0], [2, 3]]
    png = cv2.imread(str(first / "00001.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(cv2.cvtColor(png, cv2.COLOR_BGR2RGB), frame(2))
    assert json.loads((tmp_path / "ep_001_p3_r1.25" / "actions.json").read_text()) == [0]


def test_recording_dict_and_grayscale_obs(tmp_path):
    cv2 = pytest.importorskip("cv2")
    env = RecordingWrapper(DictObsEnv(), str(tmp_path / "dict"), player_id=0)
    env.reset()
    env.step(0)
    png = cv2.imread(str(tmp_path / "dict" / "ep_000_p0" / "00000.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(png[..., ::-1], frame(1))

    env = RecordingWrapper(ScriptedEnv(obs_shape=(H, W)), str(tmp_path / "gray"), player_id=1)
    env.reset()
    env.step(0)
    png = cv2.imread(str(tmp_path / "gray" / "ep_000_p1" / "00000.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(png, frame(1, (H, W)))


def test_recording_step_before_reset_is_an_error(tmp_path):
    pytest.importorskip("cv2")
    with pytest.raises(RuntimeError, match="call reset"):
        RecordingWrapper(ScriptedEnv(), str(tmp_path), 0).step(0)


# --------------------------------------------------------------------------------------------------------------
# A real Atari env, wrapped as sf_examples/atari/atari_utils.py does (gymnasium 1.x wrapper names)
# --------------------------------------------------------------------------------------------------------------


def make_atari_stack(env_id: str, frameskip: int = 4, framestack: int = 4) -> gym.Env:
    ale_py = pytest.importorskip("ale_py")
    pytest.importorskip("cv2")  # gymnasium's ResizeObservation uses OpenCV
    gym.register_envs(ale_py)
    env = gym.make(env_id)
    env = gym.wrappers.RecordEpisodeStatistics(env)
    env = NoopResetEnv(env, noop_max=30)
    env = MaxAndSkipEnv(env, skip=frameskip)
    env = EpisodicLifeEnv(env)
    if "FIRE" in env.unwrapped.get_action_meanings():
        env = FireResetEnv(env)
    env = ClipRewardEnv(env)
    env = gym.wrappers.ResizeObservation(env, (84, 84))
    env = gym.wrappers.GrayscaleObservation(env)
    env = gym.wrappers.FrameStackObservation(env, framestack)
    env = NumpyObsWrapper(env)
    return env


def test_atari_stack_breakout():
    env = make_atari_stack("BreakoutNoFrameskip-v4")
    assert env.observation_space.shape == (4, 84, 84) and env.observation_space.dtype == np.uint8
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8

    ale = env.unwrapped.ale
    rewards, life_losses, game_overs = set(), 0, 0
    for _ in range(600):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert type(obs) is np.ndarray and obs.shape == (4, 84, 84) and obs.dtype == np.uint8
        rewards.add(float(reward))
        if terminated or truncated:
            lives_before_reset = ale.lives()
            if lives_before_reset > 0:
                life_losses += 1
                env.reset()
                assert ale.lives() == lives_before_reset  # a lost life does not restart the game
            else:
                game_overs += 1
                assert "episode" in info  # RecordEpisodeStatistics saw the real end
                env.reset()
                assert ale.lives() == 5
    assert rewards <= {-1.0, 0.0, 1.0}
    assert life_losses >= 1
    env.close()
