"""Self-play on a PettingZoo classic (turn-based) game: Connect Four, tic-tac-toe, ...

    pip install "pysf[pettingzoo]"
    python examples/train_pettingzoo_classic.py --env connect_four_v3 --experiment pz_connect_four
    python examples/train_pettingzoo_classic.py --env tictactoe_v3 --num_policies 2 --experiment pz_tictactoe

The factory returns the game's ``AECEnv`` as PettingZoo builds it; pysf wraps it (``pysf.envs.pettingzoo_env``)
into a multi-agent env whose two agents are the two seats, so one policy plays itself, or with
``--num_policies 2`` two policies play each other. The games' ``action_mask`` reaches the policy, so it never
picks an illegal move, and the console and ``.summary/{i}`` show each policy's win rate against each opponent
policy. The only wrapper here flattens the board (``observation``, int8 planes) into the float vector the
default MLP encoder takes.
"""

import importlib
import sys

import numpy as np
from gymnasium import spaces

from pysf.cfg.arguments import parse_full_cfg, parse_sf_args
from pysf.envs.env_utils import register_env
from pysf.train import run_rl

try:
    from pettingzoo.utils.wrappers import BaseWrapper
except ImportError:  # the extra is not installed: main() says so
    BaseWrapper = object


class FlatBoard(BaseWrapper):
    """The ``observation`` key of a classic game's observation dict as a flat float32 vector."""

    def observation_space(self, agent):
        space = super().observation_space(agent)
        board = space["observation"]
        flat = spaces.Box(0.0, 1.0, (int(np.prod(board.shape)),), dtype=np.float32)
        return spaces.Dict({"observation": flat, "action_mask": space["action_mask"]})

    def observe(self, agent):
        obs = super().observe(agent)
        return {"observation": obs["observation"].astype(np.float32).ravel(), "action_mask": obs["action_mask"]}


def make_classic_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    """Sample Factory's 4-argument env factory: ``pettingzoo.classic.<full_env_name>.env()``, board flattened."""
    module = importlib.import_module(f"pettingzoo.classic.{full_env_name}")
    return FlatBoard(module.env(render_mode=render_mode))


def main() -> int:
    """Script entry point."""
    try:
        import pettingzoo.classic  # noqa: F401
    except ImportError:
        print('This example needs PettingZoo: pip install "pysf[pettingzoo]"', file=sys.stderr)
        return 1
    parser, partial_cfg = parse_sf_args()
    register_env(partial_cfg.env, make_classic_env)
    # A small MLP and short games: many envs, large batches, some entropy.
    parser.set_defaults(
        use_rnn=False,
        recurrence=1,
        encoder_mlp_layers=[256, 256],
        nonlinearity="relu",
        num_workers=2,
        num_envs_per_worker=16,
        rollout=32,
        batch_size=2048,
        num_batches_per_epoch=2,
        num_epochs=2,
        learning_rate=1e-3,
        exploration_loss_coeff=0.01,
        normalize_returns=False,
        with_vtrace=False,
        train_for_env_steps=1_000_000,
    )
    cfg = parse_full_cfg(parser)
    return run_rl(cfg)


if __name__ == "__main__":
    sys.exit(main())
