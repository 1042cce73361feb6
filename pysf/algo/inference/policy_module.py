"""``InferencePolicy``: the one module signature the native core runs.

``forward(obs, rnn_states, deterministic) -> outputs`` takes raw observations (dtype as the env gives
them, plus an optional ``action_mask`` key), casts and normalizes them inside the model, runs the
actor-critic, and returns ``values``, ``action_logits``, ``actions``, ``log_prob_actions`` and
``new_rnn_states`` (the entries the trajectory layout, ``pysf._C.trajectory_fields()``, maps to buffers). ``deterministic`` replaces sampled actions with the most likely ones. The same module
runs eagerly for ``--inference_backend=python``.
"""

from __future__ import annotations

import inspect
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from pysf.algo.utils.action_distributions import ACTION_MASK_KEY, make_distribution_head
from pysf.model.actor_critic import ActorCritic
from pysf.utils.typing import ObsSpace

class InferencePolicy(nn.Module):
    """Wraps an actor-critic whose ``forward`` accepts ``action_mask`` (Sample Factory >= 2.1.2 signature)."""

    def __init__(self, actor_critic: ActorCritic, float_keys: List[str]):
        super().__init__()
        self.actor_critic = actor_critic
        # Parameter-free; rebuilt from the action space so custom actor-critics need not expose one.
        self.distribution_head = make_distribution_head(actor_critic.action_space)
        self.float_keys: List[str] = float_keys
        self.action_mask_key: str = ACTION_MASK_KEY  # an attribute: TorchScript cannot read a module global

    def _run_actor_critic(
        self, normalized_obs: Dict[str, Tensor], rnn_states: Tensor, action_mask: Optional[Tensor]
    ) -> Dict[str, Tensor]:
        return self.actor_critic(normalized_obs, rnn_states, False, action_mask)

    def forward(self, obs: Dict[str, Tensor], rnn_states: Tensor, deterministic: bool) -> Dict[str, Tensor]:
        """Raw observations + RNN states -> policy outputs for one batch."""
        action_mask: Optional[Tensor] = None
        model_obs: Dict[str, Tensor] = {}
        for key, value in obs.items():
            if key == self.action_mask_key:
                action_mask = value
            else:
                model_obs[key] = value
        for key in self.float_keys:
            model_obs[key] = model_obs[key].float()
        normalized_obs = self.actor_critic.normalize_obs(model_obs)
        result = self._run_actor_critic(normalized_obs, rnn_states, action_mask)
        if deterministic:
            logits = result["action_logits"]
            actions = self.distribution_head.argmax(logits, action_mask)
            result["actions"] = actions
            result["log_prob_actions"] = self.distribution_head.log_prob(logits, actions, action_mask)
        return result


class InferencePolicyWithoutMask(InferencePolicy):
    """For actor-critics with Sample Factory 2.1.1's ``forward(obs, rnn_states, values_only=False)``."""

    def _run_actor_critic(
        self, normalized_obs: Dict[str, Tensor], rnn_states: Tensor, action_mask: Optional[Tensor]
    ) -> Dict[str, Tensor]:
        return self.actor_critic(normalized_obs, rnn_states, False)


def forward_accepts_action_mask(actor_critic: nn.Module) -> bool:
    """Whether ``actor_critic.forward`` takes a fourth (action mask) argument."""
    params = list(inspect.signature(type(actor_critic).forward).parameters.values())[1:]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 4 or any(p.name == ACTION_MASK_KEY for p in params)


def float_observation_keys(actor_critic: ActorCritic, obs_space: ObsSpace) -> List[str]:
    """Observation keys the model wants as float32 (``type_for_input_tensor``), in space order."""
    keys = [k for k in obs_space.spaces.keys() if k != ACTION_MASK_KEY]
    return [k for k in keys if actor_critic.type_for_input_tensor(k) == torch.float32]


def make_inference_module(actor_critic: ActorCritic, obs_space: ObsSpace) -> InferencePolicy:
    """Wrap ``actor_critic`` (used as is: pass a copy in eval mode) in the inference contract."""
    cls = InferencePolicy if forward_accepts_action_mask(actor_critic) else InferencePolicyWithoutMask
    return cls(actor_critic, float_observation_keys(actor_critic, obs_space))
