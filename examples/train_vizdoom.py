"""Train on VizDoom with Sample Factory's Doom settings (its ``sf_examples/vizdoom``), on the scenarios that the
``vizdoom`` wheel bundles.

    pip install 'pysf[vizdoom]'
    python examples/train_vizdoom.py --env doom_basic --experiment doom_basic
    python examples/train_vizdoom.py --env doom_health_gathering --experiment health --train_for_env_steps 5000000
    python examples/enjoy_vizdoom.py --env doom_basic --experiment doom_basic --no_render --max_num_episodes 10

Each env is one ``vizdoom.DoomGame`` (no window) rendering 160x120 RGB frames, resized to ``--res_w`` x ``--res_h``
(128x72) and handed to the model as uint8 CHW images; ``--env_frameskip`` (4) game tics pass per action, and env
frames are counted in tics. Actions are Sample Factory's flat sets: 0 does nothing, ``k`` presses the scenario's
``k``-th button alone. The health-gathering scenarios add Sample Factory's shaping (+1 whenever health goes up) and
report the unshaped episode reward as ``true_objective``; ``doom_basic``'s rewards are scaled by 0.01.

The scenarios are vizdoom's own ``.cfg``/``.wad`` files (``vizdoom.scenarios_path``), with the buttons and rewards
that Sample Factory's copies of the ``.cfg`` files set differently (:data:`SCENARIOS`); other details (e.g. the
HUD, rendered in its ``basic``) may still differ, so scores are comparable in kind, not to the digit.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pysf.cfg.arguments import parse_full_cfg, parse_sf_args
from pysf.envs.env_utils import register_env
from pysf.envs.env_wrappers import PixelFormatChwWrapper, ResizeWrapper, RewardScalingWrapper
from pysf.train import run_rl

GAME_WIDTH, GAME_HEIGHT = 160, 120  # the game renders this; the model sees --res_w x --res_h


@dataclass(frozen=True)
class DoomScenario:
    """A vizdoom scenario and what Sample Factory's copy of its ``.cfg`` sets differently (None: as vizdoom's)."""

    config_file: str  # in vizdoom.scenarios_path
    reward_scale: float = 1.0
    health_shaping: bool = False  # +1 whenever health goes up; the unshaped return is the true objective
    buttons: Optional[Tuple[str, ...]] = None  # vizdoom.Button names, in action order
    living_reward: Optional[float] = None
    death_penalty: Optional[float] = None


# Sample Factory's gathering scenarios reward little but the medkits (its shaping): vizdoom's give +1 per tic alive
# and -100 for dying, which swamps the shaping (a 500k-frame run stayed at random's return).
_GATHERING = dict(health_shaping=True, buttons=("TURN_LEFT", "TURN_RIGHT", "MOVE_FORWARD", "MOVE_BACKWARD"),
                  living_reward=0.01, death_penalty=0.0)
SCENARIOS: Dict[str, DoomScenario] = {
    "doom_basic": DoomScenario("basic.cfg", reward_scale=0.01),
    "doom_health_gathering": DoomScenario("health_gathering.cfg", **_GATHERING),
    "doom_health_gathering_supreme": DoomScenario("health_gathering_supreme.cfg", **_GATHERING),
    "doom_my_way_home": DoomScenario("my_way_home.cfg", buttons=("TURN_LEFT", "TURN_RIGHT", "MOVE_FORWARD", "MOVE_BACKWARD")),
    "doom_defend_the_center": DoomScenario("defend_the_center.cfg"),
    "doom_defend_the_line": DoomScenario("defend_the_line.cfg"),
}


def doom_scenario(env_name: str) -> DoomScenario:
    try:
        return SCENARIOS[env_name]
    except KeyError:
        raise ValueError(f"unknown Doom env {env_name!r}; this example has {', '.join(SCENARIOS)}") from None


class DoomEnv(gym.Env):
    """One single-player ``vizdoom.DoomGame`` as a gymnasium env: HWC uint8 RGB frames of the game's resolution,
    a flat discrete action space, ``skip_frames`` tics per step (``info["num_frames"]``), the scenario's game
    variables in ``info`` by name (e.g. ``info["HEALTH"]``). An episode ends terminated when the player dies or
    the scenario's goal is reached, truncated at the scenario's ``episode_timeout``."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, scenario: DoomScenario, skip_frames: int = 4, render_mode: Optional[str] = None):
        import vizdoom

        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"DoomEnv renders only 'rgb_array' frames (got render_mode={render_mode!r})")
        if skip_frames < 1:
            raise ValueError(f"DoomEnv: skip_frames must be >= 1, got {skip_frames}")
        self.render_mode = render_mode
        self._skip_frames = skip_frames
        self._game = vizdoom.DoomGame()
        self._game.load_config(os.path.join(vizdoom.scenarios_path, scenario.config_file))
        if scenario.buttons is not None:
            self._game.set_available_buttons([getattr(vizdoom.Button, name) for name in scenario.buttons])
        if scenario.living_reward is not None:
            self._game.set_living_reward(scenario.living_reward)
        if scenario.death_penalty is not None:
            self._game.set_death_penalty(scenario.death_penalty)
        self._game.set_window_visible(False)
        self._game.set_mode(vizdoom.Mode.PLAYER)
        self._game.set_screen_format(vizdoom.ScreenFormat.RGB24)
        self._game.set_screen_resolution(getattr(vizdoom.ScreenResolution, f"RES_{GAME_WIDTH}X{GAME_HEIGHT}"))
        self._variables = self._game.get_available_game_variables()
        num_buttons = self._game.get_available_buttons_size()
        # Action k > 0 presses button k-1 alone; action 0 presses none.
        self._button_vectors = np.eye(num_buttons + 1, num_buttons, k=-1, dtype=np.float64).tolist()
        self.action_space = spaces.Discrete(num_buttons + 1)
        self.observation_space = spaces.Box(0, 255, (GAME_HEIGHT, GAME_WIDTH, 3), dtype=np.uint8)
        self._started = False
        self._last_frame = np.zeros(self.observation_space.shape, dtype=np.uint8)

    def _observe(self) -> Tuple[np.ndarray, Dict[str, Any]]:
        state = self._game.get_state()
        if state is not None:  # None once the episode has finished: the last frame stands for the final one
            self._last_frame = state.screen_buffer
            variables = state.game_variables
        else:
            variables = [self._game.get_game_variable(variable) for variable in self._variables]
        return self._last_frame, {variable.name: float(value) for variable, value in zip(self._variables, variables)}

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        if seed is not None:
            self._game.set_seed(int(seed) % 2**31)
        if not self._started:
            self._game.init()
            self._started = True
        self._game.new_episode()
        return self._observe()

    def step(self, action):
        reward = self._game.make_action(self._button_vectors[int(action)], self._skip_frames)
        finished = self._game.is_episode_finished()
        truncated = finished and self._game.is_episode_timeout_reached()
        observation, info = self._observe()
        info["num_frames"] = self._skip_frames
        return observation, float(reward), finished and not truncated, truncated, info

    def render(self) -> Optional[np.ndarray]:
        return self._last_frame if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        if self._started:
            self._game.close()
            self._started = False


class HealthGatheringShaping(gym.Wrapper):
    """Sample Factory's shaping for the gathering scenarios: +1 on every step whose health is above the previous
    step's (a medkit picked up). The env's own episode return goes to ``info["true_objective"]`` at the end."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._health: Optional[float] = None
        self._unshaped_return = 0.0

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        self._health, self._unshaped_return = info.get("HEALTH"), 0.0
        return observation, info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._unshaped_return += reward
        health = info.get("HEALTH")
        if terminated or truncated:
            info["true_objective"] = self._unshaped_return
        elif health is not None and self._health is not None and health > self._health:
            reward += 1.0
        self._health = health
        return observation, reward, terminated, truncated, info


def make_doom_env(env_name: str, cfg=None, env_config=None, render_mode: Optional[str] = None) -> gym.Env:
    """The env ``env_name`` (a key of :data:`SCENARIOS`) with Sample Factory's Doom wrapper stack."""
    scenario = doom_scenario(env_name)
    skip_frames = int(cfg.env_frameskip) if cfg is not None else 4
    env: gym.Env = DoomEnv(scenario, skip_frames, render_mode)
    width, height = (cfg.res_w, cfg.res_h) if cfg is not None else (128, 72)
    if (width, height) != (GAME_WIDTH, GAME_HEIGHT):
        env = ResizeWrapper(env, width, height, grayscale=False, area_interpolation=True)
    if cfg is None or cfg.pixel_format == "CHW":
        env = PixelFormatChwWrapper(env)
    if scenario.health_shaping:
        env = HealthGatheringShaping(env)
    if scenario.reward_scale != 1.0:
        env = RewardScalingWrapper(env, scenario.reward_scale)
    return env


def add_doom_args(parser) -> None:
    parser.add_argument("--res_w", type=int, default=128, help="Width of the frames the model sees (resized)")
    parser.add_argument("--res_h", type=int, default=72, help="Height of the frames the model sees (resized)")


def doom_defaults(parser) -> None:
    """Sample Factory's Doom settings (its sf_examples/vizdoom/doom/doom_params.py)."""
    parser.set_defaults(
        ppo_clip_value=0.2, obs_subtract_mean=0.0, obs_scale=255.0, exploration_loss="symmetric_kl",
        exploration_loss_coeff=0.001, normalize_returns=True, normalize_input=True, env_frameskip=4,
        eval_env_frameskip=1, fps=35, heartbeat_reporting_interval=600,
    )


def parse_doom_args(argv=None, evaluation: bool = False):
    parser, _partial_cfg = parse_sf_args(argv=argv, evaluation=evaluation)
    add_doom_args(parser)
    doom_defaults(parser)
    return parse_full_cfg(parser, argv)


def register_doom_envs() -> None:
    for env_name in SCENARIOS:
        register_env(env_name, make_doom_env)


def main() -> int:
    """Script entry point."""
    cfg = parse_doom_args()
    doom_scenario(cfg.env)  # an unknown name fails here, with the list of known ones
    register_doom_envs()
    return run_rl(cfg)


if __name__ == "__main__":
    sys.exit(main())
