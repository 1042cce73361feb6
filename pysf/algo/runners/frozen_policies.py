"""Frozen policies (``--frozen_policies``): policies loaded from checkpoints that act but never learn.

They take the policy ids after the learning ones (``--num_policies`` ... ``--num_policies + K - 1``), so the
sampler's agent -> policy mapping seats them like any other policy: the learning policies play against fixed
opponents, for an evaluation (the per-matchup win rates of two-player games) or a simple league. Their agents'
trajectories train nobody and are dropped; they have no checkpoints, summaries or episode windows of their own.
Sample Factory has no such policies.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List

import torch

from pysf.algo.utils.checkpoints import checkpoint_dir, checkpoints
from pysf.algo.utils.env_info import EnvInfo
from pysf.model.actor_critic import create_actor_critic
from pysf.utils.typing import Config
from pysf.utils.utils import log


def num_acting_policies(cfg: Config) -> int:
    """The policies agents are mapped to: the learning ones, then the frozen ones."""
    return int(cfg.num_policies) + len(frozen_policy_paths(cfg))


def frozen_policy_paths(cfg: Config) -> List[str]:
    """``--frozen_policies`` as given (an absent flag: none)."""
    return list(getattr(cfg, "frozen_policies", None) or [])


def resolve_frozen_checkpoint(path: str) -> str:
    """The checkpoint file ``path`` names: the file itself, the newest checkpoint of a ``checkpoint_p{i}`` folder, or
    that of policy 0 of an experiment folder. Raises ValueError saying what was looked for."""
    if os.path.isfile(path):
        return path
    for directory in (path, checkpoint_dir(path, 0)):
        found = checkpoints(directory) if os.path.isdir(directory) else []
        if found:
            return found[-1]
    raise ValueError(
        f"--frozen_policies: {path!r} is neither a checkpoint file nor a folder with checkpoints (a checkpoint_p<i> "
        f"folder, or an experiment folder whose checkpoint_p0 holds some)"
    )


@dataclass
class FrozenPolicy:
    """One frozen policy: its id, the checkpoint it came from, that checkpoint's version and env steps, and its
    inference policy."""

    policy_id: int
    checkpoint_path: str
    train_step: int
    env_steps: int
    policy: Any  # pysf.algo.inference.policy_backends.InferencePolicyBackend


def load_frozen_policies(cfg: Config, env_info: EnvInfo, rnn_size: int) -> List[FrozenPolicy]:
    """Builds each ``--frozen_policies`` checkpoint's model with this run's model flags and its inference policy."""
    from pysf.algo.inference.policy_backends import make_inference_policy

    frozen = []
    for index, path in enumerate(frozen_policy_paths(cfg)):
        checkpoint_path = resolve_frozen_checkpoint(path)
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        if not isinstance(state, dict) or "model" not in state:
            raise ValueError(f"--frozen_policies: {checkpoint_path} is not a pysf / Sample Factory checkpoint")
        actor_critic = create_actor_critic(cfg, env_info.obs_space, env_info.action_space)
        try:
            actor_critic.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise ValueError(
                f"--frozen_policies: the model in {checkpoint_path} does not fit the one this run's flags build "
                f"(a frozen policy must come from a run with the same model flags): {exc}"
            ) from exc
        actor_critic.eval()
        policy_id = int(cfg.num_policies) + index
        train_step = int(state.get("train_step", 0))
        policy = make_inference_policy(actor_critic, env_info.obs_space, rnn_size, backend=cfg.inference_backend)
        policy.update_weights(actor_critic, train_step)
        log.info("Frozen policy %d: %s (train step %d)", policy_id, checkpoint_path, train_step)
        frozen.append(FrozenPolicy(policy_id, checkpoint_path, train_step, int(state.get("env_steps", 0)), policy))
    return frozen
