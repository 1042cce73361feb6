"""Watch (or evaluate) a policy trained by ``train_vizdoom.py``: Sample Factory's enjoy with the Doom envs.

    python examples/enjoy_vizdoom.py --env doom_basic --experiment doom_basic --no_render --max_num_episodes 10
    python examples/enjoy_vizdoom.py --env doom_basic --experiment doom_basic --save_video --video_frames 1000

With the Doom defaults each action is repeated for ``--env_frameskip`` (4) tics, rendered one tic at a time
(``--eval_env_frameskip=1``) at ``--fps=35``, the game's speed.
"""

from __future__ import annotations

import sys

from train_vizdoom import doom_scenario, parse_doom_args, register_doom_envs

from pysf.enjoy import enjoy


def main() -> int:
    """Script entry point."""
    cfg = parse_doom_args(evaluation=True)
    doom_scenario(cfg.env)
    register_doom_envs()
    status, _reward = enjoy(cfg)
    return status


if __name__ == "__main__":
    sys.exit(main())
