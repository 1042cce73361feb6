"""Sample Factory's standard env wrappers (``sample_factory.envs.env_wrappers``), on gymnasium 1.x.

Same names, constructor signatures and behaviour as Sample Factory 2.1.1 (plus ``EpisodeCounterWrapper``
from its later GitHub code), written against gymnasium 1.x's API: ``reset(seed=..., options=...)`` returns
``(obs, info)`` and ``step`` returns ``(obs, reward, terminated, truncated, info)``.

- Image helpers: ``ResizeWrapper`` (OpenCV), ``PixelFormatChwWrapper`` (HWC -> CHW), ``RecordingWrapper``
  (writes each step's frame as a PNG, OpenCV).
- Episode/reward helpers: ``RewardScalingWrapper``, ``TimeLimitWrapper``, ``EpisodeCounterWrapper``.
- The Atari stack used by Stable-Baselines3 and CleanRL (and by Sample Factory's ``sf_examples/atari``):
  ``NoopResetEnv``, ``FireResetEnv``, ``EpisodicLifeEnv``, ``MaxAndSkipEnv``, ``ClipRewardEnv``,
  ``NumpyObsWrapper``.

OpenCV is optional: it is imported when a wrapper that needs it is built, and a missing one is reported
with the package to install (``opencv-python-headless``).

Where this module differs from Sample Factory, it is where Sample Factory's code cannot run or would be
wrong, and each case is said in the class's docstring (e.g. a Dict observation space is not modified in
place by ``PixelFormatChwWrapper``; ``RecordingWrapper`` records Dict observations' ``"obs"`` image).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, SupportsFloat, Tuple, Union

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pysf.envs.env_utils import num_env_steps
from pysf.utils.utils import ensure_dir_exists, log

GymObs = Union[Tuple, Dict[str, Any], np.ndarray, int]
GymStepReturn = Tuple[GymObs, float, bool, bool, Dict]

OPENCV_PACKAGE = "opencv-python-headless"
OPENCV_EXTRA = "opencv"

# ALE's action meanings that the Atari reset wrappers rely on.
_NOOP_MEANING = "NOOP"
_FIRE_MEANING = "FIRE"

# More leading entries than this and a 3-D image is taken to be HWC (an image is never 4 pixels high).
_MAX_IMAGE_CHANNELS = 4


def _import_cv2(needed_by: str) -> Any:
    """OpenCV's ``cv2`` module, or an ImportError that says which package to install."""
    try:
        import cv2
    except ImportError as exc:
        raise ImportError(
            f"{needed_by} needs OpenCV (the cv2 module), which is not installed. Install it with "
            f"`pip install {OPENCV_PACKAGE}` (or pysf's extra: `pip install 'pysf[{OPENCV_EXTRA}]'`)."
        ) from exc
    return cv2


def has_image_observations(observation_space: spaces.Space) -> bool:
    """Whether ``observation_space`` looks like images: a heuristic, true for 2 or more dimensions."""
    return len(observation_space.shape) >= 2


# --------------------------------------------------------------------------------------------------------------
# Image observations
# --------------------------------------------------------------------------------------------------------------


class ResizeWrapper(gym.Wrapper):
    """Resize image observations to ``w`` x ``h`` with OpenCV and, by default, convert them to grayscale.

    Output shapes (``h``, ``w`` first, as images are stored):

    - ``grayscale=True``: ``(h, w)``, or ``(h, w, 1)`` with ``add_channel_dim``;
    - ``grayscale=False``: ``(h, w, c)`` for an input with ``c`` channels, and for a 2-D input ``(h, w)``,
      or ``(h, w, 1)`` with ``add_channel_dim``.

    Interpolation is nearest-neighbour, or pixel-area averaging with ``area_interpolation`` (better for
    large downscaling). Grayscale conversion takes RGB (or RGBA) input; an input that is already 2-D is left
    as it is. The space keeps the input's dtype and its smallest low / largest high bound.

    A Dict observation space has each image entry (a Box with 2 or more dimensions) resized; other entries
    pass through unchanged (Sample Factory tries to resize every entry, which fails on non-images).
    """

    def __init__(
        self,
        env: gym.Env,
        w: int,
        h: int,
        grayscale: bool = True,
        add_channel_dim: bool = False,
        area_interpolation: bool = False,
    ):
        super().__init__(env)
        self._cv2 = _import_cv2("ResizeWrapper")
        if w <= 0 or h <= 0:
            raise ValueError(f"ResizeWrapper: w and h must be positive, got w={w}, h={h}")

        self.w = w
        self.h = h
        self.grayscale = grayscale
        self.add_channel_dim = add_channel_dim
        self.interpolation = self._cv2.INTER_AREA if area_interpolation else self._cv2.INTER_NEAREST

        old_space = env.observation_space
        if isinstance(old_space, spaces.Dict):
            self._resized_keys = [key for key, space in old_space.spaces.items() if self._is_image_box(space)]
            self.observation_space = spaces.Dict(
                {
                    key: self._calc_new_obs_space(space) if key in self._resized_keys else space
                    for key, space in old_space.spaces.items()
                }
            )
        else:
            if not self._is_image_box(old_space):
                raise ValueError(
                    f"ResizeWrapper works on image observations (a Box with 2 or more dimensions), "
                    f"got {old_space}"
                )
            self._resized_keys = []
            self.observation_space = self._calc_new_obs_space(old_space)

    @staticmethod
    def _is_image_box(space: spaces.Space) -> bool:
        return isinstance(space, spaces.Box) and has_image_observations(space)

    def _output_shape(self, old_shape: Tuple[int, ...]) -> Tuple[int, ...]:
        if len(old_shape) > 2 and not self.grayscale:
            return (self.h, self.w, old_shape[-1])
        return (self.h, self.w, 1) if self.add_channel_dim else (self.h, self.w)

    def _calc_new_obs_space(self, old_space: spaces.Box) -> spaces.Box:
        return spaces.Box(
            low=old_space.low.min(),
            high=old_space.high.max(),
            shape=self._output_shape(old_space.shape),
            dtype=old_space.dtype,
        )

    def _convert_obs(self, obs: Optional[np.ndarray]) -> Optional[np.ndarray]:
        if obs is None:
            return obs
        cv2 = self._cv2
        obs = np.asarray(obs)
        out_shape = self._output_shape(obs.shape)

        resized = cv2.resize(obs, (self.w, self.h), interpolation=self.interpolation)
        if self.grayscale and resized.ndim == 3:
            channels = resized.shape[-1]
            if channels == 3:
                resized = cv2.cvtColor(resized, cv2.COLOR_RGB2GRAY)
            elif channels == 4:
                resized = cv2.cvtColor(resized, cv2.COLOR_RGBA2GRAY)
            elif channels != 1:
                raise ValueError(
                    f"ResizeWrapper(grayscale=True) converts RGB or RGBA images, got {channels} channels; "
                    f"pass grayscale=False to keep them"
                )
        # OpenCV drops a channel dimension of size 1; the reshape puts back what the space declares.
        return resized.reshape(out_shape)

    def _observation(self, obs: Any) -> Any:
        if isinstance(obs, dict):
            return {key: self._convert_obs(value) if key in self._resized_keys else value for key, value in obs.items()}
        return self._convert_obs(obs)

    def reset(self, **kwargs: Any) -> Tuple[Any, Dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self._observation(obs), info

    def step(self, action: Any) -> GymStepReturn:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._observation(obs), reward, terminated, truncated, info


class PixelFormatChwWrapper(gym.ObservationWrapper):
    """Transpose HWC image observations to CHW (PyTorch's layout).

    Works on a Box observation space or on a Dict one with the image under ``"obs"``. It refuses spaces that
    are not images, that have no channel dimension, or whose first dimension is 4 or less (taken to be CHW
    already). The returned image is a transposed view of the env's array, not a copy.

    Unlike Sample Factory, a Dict space is replaced by a new one (the wrapped env's space is left as it
    was), and a Dict observation is a new dict, the env's own is not modified.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)

        old_space = env.observation_space
        self.dict_obs_space = isinstance(old_space, spaces.Dict)
        if self.dict_obs_space:
            if "obs" not in old_space.spaces:
                raise ValueError(
                    f"PixelFormatChwWrapper: a Dict observation space must hold the image under 'obs', "
                    f"got keys {list(old_space.spaces)}"
                )
            img_space = old_space.spaces["obs"]
        else:
            img_space = old_space

        if not isinstance(img_space, spaces.Box) or not has_image_observations(img_space):
            raise ValueError(f"PixelFormatChwWrapper only works with image observations, got {img_space}")
        if len(img_space.shape) != 3:
            raise ValueError(
                f"PixelFormatChwWrapper needs HWC images with a channel dimension, got shape {img_space.shape} "
                f"(add one first, e.g. ResizeWrapper(..., add_channel_dim=True))"
            )
        if img_space.shape[0] <= _MAX_IMAGE_CHANNELS:
            raise ValueError(
                f"PixelFormatChwWrapper: observation shape {img_space.shape} looks CHW already "
                f"(first dimension <= {_MAX_IMAGE_CHANNELS}); do not wrap this env"
            )

        chw_space = spaces.Box(
            low=self._transpose(img_space.low),
            high=self._transpose(img_space.high),
            dtype=img_space.dtype,
        )
        if self.dict_obs_space:
            self.observation_space = spaces.Dict({**old_space.spaces, "obs": chw_space})
        else:
            self.observation_space = chw_space

    @staticmethod
    def _transpose(obs: np.ndarray) -> np.ndarray:
        return np.transpose(obs, (2, 0, 1))

    def observation(self, observation: Any) -> Any:
        if observation is None:
            return observation
        if self.dict_obs_space:
            return {**observation, "obs": self._transpose(observation["obs"])}
        return self._transpose(observation)


def _json_compatible(value: Any) -> Any:
    """``value`` with numpy arrays and scalars (also inside lists, tuples and dicts) as plain Python values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_json_compatible(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_compatible(v) for k, v in value.items()}
    return value


class RecordingWrapper(gym.Wrapper):
    """Record every episode as PNG frames plus the actions taken (Sample Factory's ``--record_to`` helper).

    Each ``reset`` starts a folder ``{record_to}/ep_{index:03d}_p{player_id}``; every ``step`` writes the
    observation there as ``{frame:05d}.png`` (RGB, RGBA or grayscale images). The next ``reset``
    finishes the previous episode: it saves ``actions.json`` (the list of actions, numpy values as plain
    numbers) and renames the folder with the episode reward appended, ``..._r{reward:.2f}``. The reward
    includes the env's shaping reward when ``env.unwrapped`` has ``_total_shaping_reward`` (VizDoom).
    As in Sample Factory, the last episode is finished only by a further ``reset``.

    ``env.unwrapped.record_to`` is set to ``record_to`` (VizDoom records its own demo files with it).
    A Dict observation is recorded through its ``"obs"`` image.
    """

    def __init__(self, env: gym.Env, record_to: str, player_id: int):
        super().__init__(env)
        self._cv2 = _import_cv2("RecordingWrapper")

        self._record_to = record_to
        self._player_id = player_id
        self._episode_recording_dir: Optional[str] = None
        self._record_id = 0
        self._frame_id = 0
        self._recorded_episode_reward = 0.0
        self._recorded_episode_shaping_reward = 0.0
        self._recorded_actions: List[Any] = []

        # Envs that can record replays of their own (VizDoom) read this attribute.
        self.unwrapped.record_to = record_to

    def _finish_episode(self) -> None:
        with open(os.path.join(self._episode_recording_dir, "actions.json"), "w") as actions_file:
            json.dump(self._recorded_actions, actions_file)

        reward = self._recorded_episode_reward + self._recorded_episode_shaping_reward
        finished_dir = f"{self._episode_recording_dir}_r{reward:.2f}"
        os.rename(self._episode_recording_dir, finished_dir)
        log.info(
            "Finished recording %s (rew %.3f, shaping %.3f)",
            finished_dir,
            reward,
            self._recorded_episode_shaping_reward,
        )

    def reset(self, **kwargs: Any) -> Tuple[Any, Dict[str, Any]]:
        if self._episode_recording_dir is not None and self._record_id > 0:
            self._finish_episode()

        dir_name = f"ep_{self._record_id:03d}_p{self._player_id}"
        self._episode_recording_dir = os.path.join(self._record_to, dir_name)
        ensure_dir_exists(self._episode_recording_dir)

        self._record_id += 1
        self._frame_id = 0
        self._recorded_episode_reward = 0.0
        self._recorded_episode_shaping_reward = 0.0
        self._recorded_actions = []

        return self.env.reset(**kwargs)

    def _record(self, img: Any) -> None:
        cv2 = self._cv2
        if isinstance(img, dict):
            img = img["obs"]
        img = np.asarray(img)
        # OpenCV writes BGR(A): swap the colour channels so that the PNG shows what the env rendered.
        if img.ndim == 3 and img.shape[-1] == 3:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        elif img.ndim == 3 and img.shape[-1] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
        frame_path = os.path.join(self._episode_recording_dir, f"{self._frame_id:05d}.png")
        if not cv2.imwrite(frame_path, img):
            raise RuntimeError(
                f"RecordingWrapper: OpenCV could not write {frame_path} (image {img.shape}, {img.dtype})"
            )
        self._frame_id += 1

    def step(self, action: Any) -> GymStepReturn:
        if self._episode_recording_dir is None:
            raise RuntimeError("RecordingWrapper: call reset() before step() (each reset starts a recording)")
        observation, reward, terminated, truncated, info = self.env.step(action)

        self._recorded_actions.append(_json_compatible(action))
        self._record(observation)
        self._recorded_episode_reward += reward
        unwrapped = self.env.unwrapped
        if hasattr(unwrapped, "_total_shaping_reward"):
            self._recorded_episode_shaping_reward = unwrapped._total_shaping_reward

        return observation, reward, terminated, truncated, info


# --------------------------------------------------------------------------------------------------------------
# Rewards and episodes
# --------------------------------------------------------------------------------------------------------------


class RewardScalingWrapper(gym.RewardWrapper):
    """Multiply every reward by ``scaling_factor``.

    If the wrapped env still declares a gymnasium 0.x ``reward_range``, this wrapper declares the scaled range
    (low <= high); gymnasium 1.x envs have none.
    """

    def __init__(self, env: gym.Env, scaling_factor: float):
        super().__init__(env)
        self._scaling = scaling_factor
        if env.has_wrapper_attr("reward_range"):
            low, high = (r * scaling_factor for r in env.get_wrapper_attr("reward_range"))
            self.reward_range = (min(low, high), max(low, high))

    def reward(self, reward: SupportsFloat) -> SupportsFloat:
        return reward * self._scaling


class TimeLimitWrapper(gym.Wrapper):
    """Truncate episodes after ``limit`` env frames, give or take up to ``random_variation_steps``.

    The limit is drawn again at every reset, uniformly from ``limit - random_variation_steps`` to
    ``limit + random_variation_steps`` (with numpy's global RNG, as Sample Factory does). Frames are counted
    from ``info["num_frames"]`` when the env reports it (frameskipping envs), else one per step. An episode
    that the env ends itself is left as the env reports it; a step that returns ``None`` as the observation
    is passed through without counting.
    """

    def __init__(self, env: gym.Env, limit: int, random_variation_steps: int = 0):
        super().__init__(env)
        if random_variation_steps < 0:
            raise ValueError(f"TimeLimitWrapper: random_variation_steps must be >= 0, got {random_variation_steps}")
        self._limit = limit
        self._variation_steps = random_variation_steps
        self._num_steps = 0
        self._terminate_in = self._random_limit()

    def _random_limit(self) -> int:
        return int(np.random.randint(-self._variation_steps, self._variation_steps + 1)) + self._limit

    def reset(self, **kwargs: Any) -> Tuple[Any, Dict[str, Any]]:
        self._num_steps = 0
        self._terminate_in = self._random_limit()
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> GymStepReturn:
        observation, reward, terminated, truncated, info = self.env.step(action)
        if observation is None:
            return observation, reward, terminated, truncated, info

        self._num_steps += num_env_steps([info])
        if not (terminated or truncated) and self._num_steps >= self._terminate_in:
            truncated = True
        return observation, reward, terminated, truncated, info


class EpisodeCounterWrapper(gym.Wrapper):
    """Number the episodes this env finishes: 0, 1, 2, ...

    At the step that ends an episode (terminated or truncated), ``info["episode_extra_stats"]`` gets
    ``"episode_number"`` (the env's other extra stats are kept), so the number reaches the episode
    statistics like any custom metric. Sample Factory's fast evaluation (``--episode_counter``) uses it to
    sample a fixed number of episodes.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.episode_count = 0

    def step(self, action: Any) -> GymStepReturn:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            extra_stats = {**info.get("episode_extra_stats", {}), "episode_number": self.episode_count}
            info = {**info, "episode_extra_stats": extra_stats}
            self.episode_count += 1
        return obs, reward, terminated, truncated, info


# --------------------------------------------------------------------------------------------------------------
# The Atari stack (Stable-Baselines3 / CleanRL conventions)
# --------------------------------------------------------------------------------------------------------------


def _action_meanings(env: gym.Env, wrapper_name: str) -> List[str]:
    unwrapped = env.unwrapped
    if not hasattr(unwrapped, "get_action_meanings"):
        raise ValueError(
            f"{wrapper_name} is for Atari (ALE) envs: {type(unwrapped).__name__} has no get_action_meanings()"
        )
    return list(unwrapped.get_action_meanings())


class NoopResetEnv(gym.Wrapper):
    """Start episodes from varied states: after each reset, take a random number of no-op actions.

    The number is drawn from 1..``noop_max`` with the base env's ``np_random`` (so ``reset(seed=...)``
    makes it reproducible), unless ``override_num_noops`` is set. The no-op is action 0, which must mean
    ``"NOOP"``. Should the episode end during the no-ops, the env is reset again with the same arguments.
    """

    def __init__(self, env: gym.Env, noop_max: int = 30):
        super().__init__(env)
        if noop_max < 1:
            raise ValueError(f"NoopResetEnv: noop_max must be >= 1, got {noop_max}")
        meanings = _action_meanings(env, "NoopResetEnv")
        if meanings[0] != _NOOP_MEANING:
            raise ValueError(f"NoopResetEnv needs action 0 to be {_NOOP_MEANING!r}, the env's actions are {meanings}")
        self.noop_max = noop_max
        self.override_num_noops: Optional[int] = None
        self.noop_action = 0

    def reset(self, **kwargs: Any) -> Tuple[np.ndarray, Dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        if self.override_num_noops is not None:
            noops = self.override_num_noops
        else:
            noops = int(self.unwrapped.np_random.integers(1, self.noop_max + 1))
        if noops < 1:
            raise ValueError(f"NoopResetEnv: override_num_noops must be >= 1, got {noops}")
        for _ in range(noops):
            obs, _, terminated, truncated, info = self.env.step(self.noop_action)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        return obs, info


class FireResetEnv(gym.Wrapper):
    """For games that wait for FIRE: after each reset, take action 1 (``"FIRE"``) and then action 2.

    The env must have at least 3 actions with action 1 meaning ``"FIRE"``. If either action ends the
    episode, the env is reset again (with the same arguments). The returned info is the last step's (or
    reset's).
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        meanings = _action_meanings(env, "FireResetEnv")
        if len(meanings) < 3 or meanings[1] != _FIRE_MEANING:
            raise ValueError(
                f"FireResetEnv needs at least 3 actions with action 1 = {_FIRE_MEANING!r}, "
                f"the env's actions are {meanings}"
            )

    def reset(self, **kwargs: Any) -> Tuple[np.ndarray, Dict[str, Any]]:
        self.env.reset(**kwargs)
        _, _, terminated, truncated, _ = self.env.step(1)
        if terminated or truncated:
            self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(2)
        if terminated or truncated:
            obs, info = self.env.reset(**kwargs)
        return obs, info


class EpisodicLifeEnv(gym.Wrapper):
    """End the episode (``terminated``) when a life is lost, but reset the game only when it is over.

    Lives are read from ``env.unwrapped.ale.lives()``. A loss counts only while lives stay above 0 (some
    games sit at 0 lives for a few frames before the game ends), and a gain (bonus life) is simply taken in.
    ``reset`` after a lost life does not reset the game: it takes one no-op step (action 0) and returns its
    observation, so every state of the game stays reachable. The real end of the game is the env's own
    ``terminated`` / ``truncated``, remembered in ``was_real_done``.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        if not hasattr(env.unwrapped, "ale"):
            raise ValueError(
                f"EpisodicLifeEnv is for Atari (ALE) envs: {type(env.unwrapped).__name__} has no ale.lives()"
            )
        self.lives = 0
        self.was_real_done = True

    def step(self, action: Any) -> GymStepReturn:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.was_real_done = bool(terminated or truncated)
        lives = self.env.unwrapped.ale.lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs: Any) -> Tuple[np.ndarray, Dict[str, Any]]:
        if self.was_real_done:
            obs, info = self.env.reset(**kwargs)
        else:
            obs, _, _, _, info = self.env.step(0)
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info


class MaxAndSkipEnv(gym.Wrapper):
    """Repeat each action ``skip`` times; return the pixel-wise max of the last two frames and the summed reward.

    The max over two consecutive frames removes the flicker of Atari sprites drawn every other frame. The
    loop stops early when the episode ends; the frames of that step are then not all fresh, which does not
    matter since the episode is over. ``info`` is the last inner step's.
    """

    def __init__(self, env: gym.Env, skip: int = 4):
        super().__init__(env)
        if skip < 1:
            raise ValueError(f"MaxAndSkipEnv: skip must be >= 1, got {skip}")
        space = env.observation_space
        if space.shape is None:
            raise ValueError(f"MaxAndSkipEnv needs array observations, got {space}")
        self._obs_buffer = np.zeros((2, *space.shape), dtype=space.dtype)
        self._skip = skip

    def step(self, action: Any) -> GymStepReturn:
        total_reward = 0.0
        terminated = truncated = False
        info: Dict[str, Any] = {}
        for i in range(self._skip):
            obs, reward, terminated, truncated, info = self.env.step(action)
            if i == self._skip - 2:
                self._obs_buffer[0] = obs
            elif i == self._skip - 1:
                self._obs_buffer[1] = obs
            total_reward += reward
            if terminated or truncated:
                break
        max_frame = self._obs_buffer.max(axis=0)
        return max_frame, total_reward, terminated, truncated, info

    def reset(self, **kwargs: Any) -> Tuple[Any, Dict[str, Any]]:
        return self.env.reset(**kwargs)


class ClipRewardEnv(gym.RewardWrapper):
    """Replace each reward by its sign: +1, 0 or -1."""

    def __init__(self, env: gym.Env):
        super().__init__(env)

    def reward(self, reward: SupportsFloat) -> SupportsFloat:
        return np.sign(reward)


class NumpyObsWrapper(gym.ObservationWrapper):
    """Return observations as numpy arrays (``np.array(obs)``, a copy).

    For observation types that only look like arrays, such as the ``LazyFrames`` of gymnasium 0.x's
    ``FrameStack``.
    """

    def observation(self, observation: Any) -> np.ndarray:
        return np.array(observation)
