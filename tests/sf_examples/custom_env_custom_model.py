"""A training script written the way Sample Factory users write them, with ``sample_factory`` renamed to
``pysf``: a custom env that implements the env interfaces, a custom conv encoder, the two-pass argument parsing
with script-specific flags and defaults, then ``run_rl`` / ``enjoy``.

    python custom_env_custom_model.py --env=my_custom_env_v1 --experiment=example [--evaluate]

The env's reward is ``action * action_rew_coeff`` (its reward shaping), so the best policy always takes the
last action: an episode of ``--custom_env_episode_len`` + 1 steps is then worth about
``(num_actions - 1) * 0.01 * (episode_len + 1)``. Each finished episode reports, as an extra statistic, how
many training steps the env was last told about (TrainingInfoInterface) and whether its reward shaping was
set (RewardShapingInterface).
"""

from __future__ import annotations

import sys
from typing import Any, Dict, Optional

import gymnasium as gym
import numpy as np
from torch import nn

from pysf.algo.utils.context import global_model_factory
from pysf.algo.utils.torch_utils import calc_num_elements
from pysf.cfg.arguments import parse_full_cfg, parse_sf_args
from pysf.enjoy import enjoy
from pysf.envs.env_utils import RewardShapingInterface, TrainingInfoInterface, register_env
from pysf.model.encoder import Encoder
from pysf.model.model_utils import nonlinearity
from pysf.train import run_rl
from pysf.utils.typing import Config, ObsSpace


class CustomEnv(gym.Env, TrainingInfoInterface, RewardShapingInterface):
    def __init__(self, full_env_name, cfg, render_mode: Optional[str] = None):
        TrainingInfoInterface.__init__(self)
        self.name = full_env_name
        self.cfg = cfg
        self.curr_episode_steps = 0
        self.observation_space = gym.spaces.Box(0, 1, (1, 10, 10))
        self.action_space = gym.spaces.Discrete(cfg.custom_env_num_actions)
        self.reward_shaping: Dict[str, Any] = dict(action_rew_coeff=0.01)
        self.reward_shaping_set = 0.0
        self.render_mode = render_mode

    def _obs(self):
        return np.float32(np.random.rand(1, 10, 10))

    def reset(self, **kwargs):
        self.curr_episode_steps = 0
        return self._obs(), {}

    def step(self, action):
        assert isinstance(action, (int, np.integer)), type(action)
        reward = action * self.reward_shaping["action_rew_coeff"]
        done = self.curr_episode_steps >= self.cfg.custom_env_episode_len
        self.curr_episode_steps += 1
        info = {}
        if done:
            steps_seen = self.training_info.get("approx_total_training_steps", -1)
            info["episode_extra_stats"] = dict(training_steps_seen=float(steps_seen), reward_shaping_set=self.reward_shaping_set)
        return self._obs(), reward, done, done, info

    def render(self):
        pass

    def get_default_reward_shaping(self) -> Dict[str, Any]:
        return self.reward_shaping

    def set_reward_shaping(self, reward_shaping: Dict[str, Any], agent_idx) -> None:
        self.reward_shaping = dict(reward_shaping)
        self.reward_shaping_set = 1.0


def make_custom_env_func(full_env_name, cfg=None, _env_config=None, render_mode: Optional[str] = None):
    return CustomEnv(full_env_name, cfg, render_mode=render_mode)


def add_extra_params(parser) -> None:
    parser.add_argument("--custom_env_num_actions", default=10, type=int, help="Number of actions")
    parser.add_argument("--custom_env_episode_len", default=1000, type=int, help="Steps per episode")
    parser.add_argument("--evaluate", action="store_true", help="Run enjoy instead of training")


def override_default_params(parser) -> None:
    parser.set_defaults(rnn_size=128)


class CustomEncoder(Encoder):
    def __init__(self, cfg, obs_space):
        super().__init__(cfg)
        obs_shape = obs_space["obs"].shape
        self.conv_head = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2), nonlinearity(cfg), nn.Conv2d(8, 16, 2, stride=1), nonlinearity(cfg)
        )
        self.conv_head_out_size = calc_num_elements(self.conv_head, obs_shape)

    def forward(self, obs_dict):
        x = self.conv_head(obs_dict["obs"])
        return x.view(-1, self.conv_head_out_size)

    def get_out_size(self) -> int:
        return self.conv_head_out_size


def make_custom_encoder(cfg: Config, obs_space: ObsSpace) -> Encoder:
    return CustomEncoder(cfg, obs_space)


def register_custom_components() -> None:
    register_env("my_custom_env_v1", make_custom_env_func)
    global_model_factory().register_encoder_factory(make_custom_encoder)


def parse_custom_args(argv=None, evaluation=False):
    parser, cfg = parse_sf_args(argv, evaluation=evaluation)
    add_extra_params(parser)
    override_default_params(parser)
    return parse_full_cfg(parser, argv)


def main() -> int:
    register_custom_components()
    evaluation = "--evaluate" in sys.argv
    cfg = parse_custom_args(evaluation=evaluation)
    if evaluation:
        status, reward = enjoy(cfg)
        print(f"enjoy reward: {reward:.3f}")
        return status
    return run_rl(cfg)


if __name__ == "__main__":
    sys.exit(main())
