"""Train on Atari (ale-py) with Sample Factory's Atari settings (its ``sf_examples/atari``).

    pip install 'pysf[atari]'
    python examples/train_atari.py --env atari_pong --experiment pong                       # one env per game
    python examples/train_atari.py --env atari_pong --experiment pong --atari_vector_envs 8   # ale_py's vector env

``--env atari_<game>`` is ``<Game>NoFrameskip-v4``. By default each env is one game behind the wrapper stack that
Sample Factory, Stable-Baselines3 and CleanRL share (no-op starts, frame skip with max-pooling, episodic lives,
fire on reset, clipped rewards, 84x84 grayscale, 4 stacked frames), stepped by pysf's env worker processes.
With ``--atari_vector_envs N`` each env is instead ale_py's ``AtariVectorEnv`` of N games, preprocessed the same
way in ale-py's own C++ threads and stepped as one batch (``--batched_sampling=True``). Frames stay uint8 up to
the model, which scales them by ``--obs_scale``.
"""

from __future__ import annotations

import sys
from typing import Optional

import gymnasium as gym

from pysf.cfg.arguments import parse_full_cfg, parse_sf_args
from pysf.envs.env_utils import register_env
from pysf.envs.env_wrappers import ClipRewardEnv, EpisodicLifeEnv, FireResetEnv, MaxAndSkipEnv, NoopResetEnv, NumpyObsWrapper
from pysf.train import run_rl

ATARI_PREFIX = "atari_"
FRAME_SIZE = 84


def atari_game(env_name: str) -> str:
    """``atari_pong`` -> ``pong`` (ale_py's ROM name)."""
    if not env_name.startswith(ATARI_PREFIX):
        raise ValueError(f"Atari envs are named {ATARI_PREFIX}<game> (e.g. atari_pong), got {env_name!r}")
    return env_name[len(ATARI_PREFIX):]


def gymnasium_id(game: str) -> str:
    """``space_invaders``/``spaceinvaders`` -> ``SpaceInvadersNoFrameskip-v4``."""
    import ale_py

    gym.register_envs(ale_py)
    wanted = game.replace("_", "").lower()
    for env_id in gym.registry:
        if env_id.endswith("NoFrameskip-v4") and env_id[: -len("NoFrameskip-v4")].lower() == wanted:
            return env_id
    raise ValueError(f"no Atari game {game!r} in ale_py (its ids end in NoFrameskip-v4)")


def make_atari_env(env_name: str, cfg=None, env_config=None, render_mode: Optional[str] = None):
    """One game behind the common Atari wrapper stack, or ale_py's vector env (``--atari_vector_envs``)."""
    game = atari_game(env_name)
    vector_envs = int(getattr(cfg, "atari_vector_envs", 0) or 0) if cfg is not None else 0
    if vector_envs > 0:
        from ale_py.vector_env import AtariVectorEnv

        return AtariVectorEnv(
            game.replace("_", ""), num_envs=vector_envs, num_threads=int(cfg.atari_vector_threads),
            frameskip=cfg.env_frameskip, stack_num=cfg.env_framestack, img_height=FRAME_SIZE, img_width=FRAME_SIZE,
            grayscale=True, noop_max=30, episodic_life=True, reward_clipping=True, use_fire_reset=True,
            autoreset_mode="SameStep",
        )
    env = gym.make(gymnasium_id(game), render_mode=render_mode)
    env = gym.wrappers.RecordEpisodeStatistics(env)  # whole games, before clipping: RecordEpisodeStatistics_reward
    env = NoopResetEnv(env, noop_max=30)
    env = MaxAndSkipEnv(env, skip=cfg.env_frameskip if cfg is not None else 4)
    env = EpisodicLifeEnv(env)
    if "FIRE" in env.unwrapped.get_action_meanings():
        env = FireResetEnv(env)
    env = ClipRewardEnv(env)
    env = gym.wrappers.ResizeObservation(env, (FRAME_SIZE, FRAME_SIZE))
    env = gym.wrappers.GrayscaleObservation(env)
    env = gym.wrappers.FrameStackObservation(env, cfg.env_framestack if cfg is not None else 4)
    return NumpyObsWrapper(env)


def add_atari_args(parser) -> None:
    parser.add_argument("--atari_vector_envs", type=int, default=0,
                        help="Games per env through ale_py's AtariVectorEnv (0: one game per env, Python wrappers)")
    parser.add_argument("--atari_vector_threads", type=int, default=1,
                        help="ale_py's own stepping threads per AtariVectorEnv")


def atari_defaults(parser) -> None:
    """Sample Factory's Atari settings (its sf_examples/atari/atari_params.py), chosen there to match
    Stable-Baselines3 and CleanRL."""
    parser.set_defaults(
        summaries_use_frameskip=True, use_record_episode_statistics=True, encoder_conv_architecture="convnet_atari",
        obs_scale=255.0, gamma=0.99, env_frameskip=4, env_framestack=4, exploration_loss_coeff=0.01, num_workers=8,
        num_envs_per_worker=1, worker_num_splits=1, train_for_env_steps=10_000_000, nonlinearity="relu",
        kl_loss_coeff=0.0, use_rnn=False, adaptive_stddev=False, reward_scale=1.0, with_vtrace=False, recurrence=1,
        batch_size=256, rollout=128, max_grad_norm=0.5, num_epochs=4, num_batches_per_epoch=4, ppo_clip_ratio=0.1,
        value_loss_coeff=0.5, exploration_loss="entropy", learning_rate=0.00025, lr_schedule="linear_decay",
        shuffle_minibatches=False, gae_lambda=0.95, batched_sampling=False, normalize_input=True,
        normalize_returns=True, serial_mode=False, async_rl=False, experiment_summaries_interval=3, adam_eps=1e-5,
    )


def parse_atari_args(argv=None, evaluation: bool = False):
    parser, partial_cfg = parse_sf_args(argv=argv, evaluation=evaluation)
    add_atari_args(parser)
    atari_defaults(parser)
    cfg = parse_full_cfg(parser, argv)
    if cfg.atari_vector_envs > 0:
        cfg.batched_sampling = True  # the vector env's batches go straight into the trajectory rows
    return cfg


def main() -> int:
    """Script entry point."""
    cfg = parse_atari_args()
    register_env(cfg.env, make_atari_env)
    return run_rl(cfg)


if __name__ == "__main__":
    sys.exit(main())
