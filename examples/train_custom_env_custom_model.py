"""A custom env and a custom encoder, registered the Sample Factory way
(``sf_examples/train_custom_env_custom_model.py`` with ``sample_factory`` replaced by ``pysf``).

    python examples/train_custom_env_custom_model.py --env my_custom_env_v1 --experiment custom

The toy env shows a random 1x10x10 "image"; the reward is ``0.01 * action`` on every step, so the best
policy always picks the largest action (return about 0.09 * episode length with 10 actions).
"""

import sys
from typing import Dict, Optional

import gymnasium as gym
import numpy as np
from torch import Tensor, nn

from pysf.algo.utils.context import global_model_factory
from pysf.algo.utils.torch_utils import calc_num_elements
from pysf.cfg.arguments import parse_full_cfg, parse_sf_args
from pysf.envs.env_utils import register_env
from pysf.model.encoder import Encoder
from pysf.model.model_utils import nonlinearity
from pysf.train import run_rl
from pysf.utils.typing import Config, ObsSpace


class CustomEnv(gym.Env):
    """Random 1x10x10 observations, ``--custom_env_num_actions`` actions, fixed-length episodes."""

    def __init__(self, full_env_name: str, cfg: Config, render_mode: Optional[str] = None):
        self.name = full_env_name
        self.cfg = cfg
        self.curr_episode_steps = 0
        self.res = 10
        self.channels = 1
        self.observation_space = gym.spaces.Box(0, 1, (self.channels, self.res, self.res), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(cfg.custom_env_num_actions)
        self.render_mode = render_mode

    def _obs(self) -> np.ndarray:
        return self.np_random.random(self.observation_space.shape, dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.curr_episode_steps = 0
        return self._obs(), {}

    def step(self, action):
        reward = float(action) * 0.01  # shaping: larger actions are better
        self.curr_episode_steps += 1
        terminated = False
        truncated = self.curr_episode_steps >= self.cfg.custom_env_episode_len
        return self._obs(), reward, terminated, truncated, {}


def make_custom_env_func(full_env_name, cfg=None, env_config=None, render_mode=None):
    """Sample Factory's 4-argument env factory."""
    return CustomEnv(full_env_name, cfg, render_mode=render_mode)


class CustomEncoder(Encoder):
    """A small conv net over the image key (TorchScript-compatible: annotated forward)."""

    def __init__(self, cfg: Config, obs_space: ObsSpace):
        super().__init__(cfg)
        obs_shape = obs_space["obs"].shape
        self.conv_head = nn.Sequential(
            nn.Conv2d(obs_shape[0], 8, kernel_size=3, stride=1),
            nonlinearity(cfg),
            nn.Conv2d(8, 16, kernel_size=3, stride=2),
            nonlinearity(cfg),
        )
        self.conv_head_out_size = calc_num_elements(self.conv_head, obs_shape)
        self.encoder_out_size = 128
        self.mlp_layers = nn.Sequential(nn.Linear(self.conv_head_out_size, self.encoder_out_size), nonlinearity(cfg))

    def forward(self, obs_dict: Dict[str, Tensor]) -> Tensor:
        x = self.conv_head(obs_dict["obs"])
        x = x.contiguous().view(-1, self.conv_head_out_size)
        return self.mlp_layers(x)

    def get_out_size(self) -> int:
        return self.encoder_out_size


def make_custom_encoder(cfg: Config, obs_space: ObsSpace) -> Encoder:
    """Factory function with Sample Factory's signature (registering the class works too)."""
    return CustomEncoder(cfg, obs_space)


def add_extra_params(parser) -> None:
    """The env's own command-line flags."""
    parser.add_argument("--custom_env_num_actions", default=10, type=int, help="number of actions")
    parser.add_argument("--custom_env_episode_len", default=100, type=int, help="episode length in steps")


def register_custom_components() -> None:
    """Register the env and the encoder before parsing/training."""
    register_env("my_custom_env_v1", make_custom_env_func)
    global_model_factory().register_encoder_factory(make_custom_encoder)


def main() -> int:
    """Script entry point."""
    register_custom_components()
    parser, _ = parse_sf_args()
    add_extra_params(parser)
    parser.set_defaults(
        use_rnn=False,
        recurrence=1,
        num_workers=2,
        num_envs_per_worker=4,
        batch_size=512,
        learning_rate=1e-3,
        exploration_loss_coeff=0.01,
        train_for_env_steps=100_000,
    )
    cfg = parse_full_cfg(parser)
    return run_rl(cfg)


if __name__ == "__main__":
    sys.exit(main())
