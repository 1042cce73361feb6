"""Sample Factory's "Custom models" template, filled in, with ``sample_factory`` replaced by ``pysf``.

The documentation's template (docs/03-customization/custom-models.md) has slips that are corrected here:
the actor-critic constructor body is indented, ``critic_linear`` gets its output size, the missing imports
are added, every component implements ``get_out_size()`` and the ``...`` bodies are written out.
Registering ``CustomActorCritic`` as a class works in pysf: its documented constructor
``(model_factory, obs_space, action_space, cfg)`` is adapted to the factory call.

The signatures are the page's, without type annotations: pysf supplies the components' types when it compiles
the model for its native rollout loop. ``CustomActorCritic`` overrides only ``forward``, as the page does; the
learner's ``forward_head`` / ``forward_core`` / ``forward_tail`` come from ``ActorCritic``, built from the
``encoder``, ``core``, ``decoder``, ``critic_linear`` and ``action_parameterization`` it sets.

Run: ``python examples/custom_models_template.py --env CartPole-v1 --train_for_env_steps 200000``
(``--rnn_size``, ``--use_rnn`` and the other flags work as usual; the custom core here is a GRU cell, so
keep ``--use_rnn=True``, the default, for the RNN state size to match).
"""

import sys

from torch import nn

from pysf.algo.utils.context import global_model_factory
from pysf.cfg.arguments import parse_args
from pysf.model.actor_critic import ActorCritic
from pysf.train import run_rl
from pysf.model.core import ModelCore
from pysf.model.decoder import Decoder
from pysf.model.encoder import Encoder
from pysf.utils.typing import ActionSpace, Config, ObsSpace


class CustomEncoder(Encoder):
    """Two-layer MLP over the ``obs`` key."""

    def __init__(self, cfg: Config, obs_space: ObsSpace):
        super().__init__(cfg)
        input_size = obs_space["obs"].shape[0]
        self.hidden_size = 64
        self.mlp = nn.Sequential(
            nn.Linear(input_size, self.hidden_size),
            nn.ELU(),
            nn.Linear(self.hidden_size, self.hidden_size),
            nn.ELU(),
        )

    def forward(self, obs_dict):
        return self.mlp(obs_dict["obs"])

    def get_out_size(self) -> int:
        return self.hidden_size


class CustomCore(ModelCore):
    """A GRU cell with ``--rnn_size`` units; its state is the flat ``[B, rnn_size]`` RNN state."""

    def __init__(self, cfg: Config, input_size: int):
        super().__init__(cfg)
        self.cell = nn.GRUCell(input_size, cfg.rnn_size)
        self.core_output_size = cfg.rnn_size

    def forward(self, head_output, rnn_states):
        new_rnn_states = self.cell(head_output, rnn_states)
        return new_rnn_states, new_rnn_states


class CustomDecoder(Decoder):
    """One hidden layer after the core."""

    def __init__(self, cfg: Config, decoder_input_size: int):
        super().__init__(cfg)
        self.out_size = 32
        self.mlp = nn.Sequential(nn.Linear(decoder_input_size, self.out_size), nn.ELU())

    def forward(self, core_output):
        return self.mlp(core_output)

    def get_out_size(self) -> int:
        return self.out_size


class CustomActorCritic(ActorCritic):
    """Encoder -> core -> decoder shared by the policy and the value head."""

    def __init__(
        self,
        model_factory,
        obs_space: ObsSpace,
        action_space: ActionSpace,
        cfg: Config,
    ):
        super().__init__(obs_space, action_space, cfg)

        self.encoder = CustomEncoder(cfg, obs_space)
        self.core = CustomCore(cfg, self.encoder.get_out_size())
        self.decoder = CustomDecoder(cfg, self.core.get_out_size())
        self.critic_linear = nn.Linear(self.decoder.get_out_size(), 1)
        self.action_parameterization = self.get_action_parameterization(self.decoder.get_out_size())

    def forward(self, normalized_obs_dict, rnn_states, values_only=False):
        x = self.forward_head(normalized_obs_dict)
        x, new_rnn_states = self.forward_core(x, rnn_states)
        result = self.forward_tail(x, values_only, sample_actions=True)
        result["new_rnn_states"] = new_rnn_states
        return result


def register_model_components():
    # register custom components with the factory
    # you can register an entire Actor Critic model
    global_model_factory().register_actor_critic_factory(CustomActorCritic)

    # or individual components
    global_model_factory().register_encoder_factory(CustomEncoder)
    global_model_factory().register_core_factory(CustomCore)
    global_model_factory().register_decoder_factory(CustomDecoder)


def main():
    """Script entry point."""
    register_model_components()
    cfg = parse_args()

    status = run_rl(cfg)
    return status


if __name__ == "__main__":
    sys.exit(main())
