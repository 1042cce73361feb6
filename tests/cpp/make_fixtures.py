"""Write the TorchScript fixtures that tests/cpp/test_policy.cpp loads.

Usage: python make_fixtures.py OUTPUT_DIR

Files written:
  policy_discrete.pt   an actor-critic with pysf's policy contract (see csrc/inference/policy.h):
                       forward(obs: Dict[str, Tensor], rnn_states: Tensor, deterministic: bool)
                         -> Dict[str, Tensor] with values, action_logits, actions, log_prob_actions,
                       new_rnn_states. It has a float64 buffer that feeds `values`, so a weight update
                       that forgot buffers is visible in the outputs.
  policy_bad_signature.pt   a module whose forward does not follow the contract.
  fixture_info.txt     "key value" lines: the shapes the C++ test must feed.

The C++ test builds its own weight sets from the loaded state, so only the architecture lives here.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Dict

import torch
from torch import nn
import torch.nn.functional as F

OBS_DIM = 5
HIDDEN = 32
RNN_SIZE = 8
NUM_ACTIONS = 3


class DiscreteActorCritic(nn.Module):
    """MLP encoder + a recurrent-ish core (tanh of a linear map of [features, state]) + categorical head."""

    def __init__(self, obs_dim: int = OBS_DIM, hidden: int = HIDDEN, rnn_size: int = RNN_SIZE,
                 num_actions: int = NUM_ACTIONS) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.core = nn.Linear(hidden + rnn_size, rnn_size)
        self.action_head = nn.Linear(rnn_size, num_actions)
        self.value_head = nn.Linear(rnn_size, 1)
        # float64 on purpose: update_weights must handle buffers of a dtype other than the parameters'.
        self.register_buffer("value_offset", torch.zeros((), dtype=torch.float64))

    def forward(self, obs: Dict[str, torch.Tensor], rnn_states: torch.Tensor,
                deterministic: bool) -> Dict[str, torch.Tensor]:
        features = self.encoder(obs["obs"])
        new_rnn_states = torch.tanh(self.core(torch.cat([features, rnn_states], dim=1)))
        action_logits = self.action_head(new_rnn_states)
        log_probs = F.log_softmax(action_logits, dim=1)
        if deterministic:
            actions = torch.argmax(action_logits, dim=1)
        else:
            actions = torch.multinomial(log_probs.exp(), 1).squeeze(1)
        values = self.value_head(new_rnn_states).squeeze(1) + self.value_offset.to(action_logits.dtype)
        return {
            "values": values,
            "action_logits": action_logits,
            "actions": actions,
            "log_prob_actions": log_probs.gather(1, actions.unsqueeze(1)).squeeze(1),
            "new_rnn_states": new_rnn_states,
        }


class BadSignature(nn.Module):
    """Takes a plain tensor instead of the observation dict: Policy must reject it at construction."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(OBS_DIM, 1)

    def forward(self, obs: torch.Tensor, rnn_states: torch.Tensor, deterministic: bool) -> Dict[str, torch.Tensor]:
        return {"values": self.linear(obs).squeeze(1), "new_rnn_states": rnn_states}


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTPUT_DIR")
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", message=r".torch\.jit\.\w+. is deprecated", category=DeprecationWarning)
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(DiscreteActorCritic()), str(out / "policy_discrete.pt"))
    torch.jit.save(torch.jit.script(BadSignature()), str(out / "policy_bad_signature.pt"))
    (out / "fixture_info.txt").write_text(
        f"obs_dim {OBS_DIM}\nrnn_size {RNN_SIZE}\nnum_actions {NUM_ACTIONS}\n")


if __name__ == "__main__":
    main()
