"""Actor-critic models (Sample Factory's ``sample_factory.model.actor_critic``).

``forward(normalized_obs_dict, rnn_states, values_only=False, action_mask=None)`` returns a dict with
``values [B]`` and, unless ``values_only``, ``action_logits [B, num_params]``, ``actions``,
``log_prob_actions [B]``, plus ``new_rnn_states [B, rnn_state_size]``. The learner calls
``forward_head`` / ``forward_core`` / ``forward_tail`` separately and then
``action_distribution().log_prob(actions)``.

Everything here compiles with TorchScript: pysf runs a compiled copy of the model from C++ during
rollouts while the learner trains this eager one. In eager code results are ``TensorDict``s and the last
action distribution is kept (``action_distribution()``); compiled code returns plain dicts.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from gymnasium import spaces
from torch import Tensor, nn

from pysf.algo.utils.action_distributions import (
    ACTION_MASK_KEY,
    ActionDistribution,
    get_action_distribution,
    is_continuous_action_space,
)
from pysf.algo.utils.running_mean_std import RunningMeanStdInPlace
from pysf.algo.utils.tensor_dict import TensorDict
from pysf.model.action_parameterization import (
    ActionParameterizationContinuousNonAdaptiveStddev,
    ActionParameterizationDefault,
    ActionsParameterization,
)
from pysf.model.core import ModelCore
from pysf.model.decoder import Decoder
from pysf.model.encoder import Encoder
from pysf.model.model_utils import Configurable, model_device
from pysf.utils.normalize import ObservationNormalizer
from pysf.utils.typing import ActionSpace, Config, ObsSpace


class ActorCritic(nn.Module, Configurable):
    """Base of all actor-critics: normalizers, action head construction, weight init and output helpers.

    A subclass that sets ``encoder``, ``core``, ``decoder``, ``critic_linear`` and ``action_parameterization``
    (``get_action_parameterization``), as Sample Factory's custom model template does, gets working
    ``forward_head`` / ``forward_core`` / ``forward_tail`` / ``forward`` from these components; a subclass that
    overrides any of them keeps full control of it (the learner calls the first three, inference calls
    ``forward``). pysf compiles the model for inference (TorchScript): the methods' signatures below are the
    contract, and pysf supplies their types to subclasses that did not annotate them; inside, use torch
    operations only (no numpy, no ``torch.distributions``, no ``*args``/``**kwargs``). A model that does not
    compile still trains with eager inference (``--inference_backend=auto``, the default).
    """

    # Eager-only attributes TorchScript need not try to compile (it would attempt their Python classes).
    __jit_ignored_attributes__ = ["cfg", "action_space", "last_action_distribution"]

    def __init__(self, obs_space: ObsSpace, action_space: ActionSpace, cfg: Config):
        nn.Module.__init__(self)
        Configurable.__init__(self, cfg)
        self.action_space = action_space
        # Sub-encoders that answer device/dtype queries for observation keys (Sample Factory's contract).
        self.encoders: List[nn.Module] = []
        # Inside the model so that they are checkpointed with it.
        self.obs_normalizer = ObservationNormalizer(obs_space, cfg)
        self.returns_normalizer: Optional[RunningMeanStdInPlace] = None
        if cfg.normalize_returns:
            self.returns_normalizer = RunningMeanStdInPlace((1,))
        self.last_action_distribution: Optional[ActionDistribution] = None

    # ---- construction helpers ---------------------------------------------------------------------

    def get_action_parameterization(self, decoder_output_size: int) -> ActionsParameterization:
        """Learned state-independent std for Box spaces without ``--adaptive_stddev``, else one linear head."""
        if not self.cfg.adaptive_stddev and is_continuous_action_space(self.action_space):
            return ActionParameterizationContinuousNonAdaptiveStddev(self.cfg, decoder_output_size, self.action_space)
        return ActionParameterizationDefault(self.cfg, decoder_output_size, self.action_space)

    def initialize_weights(self, layer: nn.Module) -> None:
        """Zero biases; orthogonal or xavier-uniform weights for Linear/Conv2d (RNNs keep torch's init)."""
        gain = self.cfg.policy_init_gain
        if hasattr(layer, "bias") and isinstance(layer.bias, nn.Parameter):
            layer.bias.data.fill_(0)
        if type(layer) not in (nn.Conv2d, nn.Linear):
            return
        if self.cfg.policy_initialization == "orthogonal":
            nn.init.orthogonal_(layer.weight.data, gain=gain)
        elif self.cfg.policy_initialization == "xavier_uniform":
            nn.init.xavier_uniform_(layer.weight.data, gain=gain)
        elif self.cfg.policy_initialization != "torch_default":
            raise ValueError(f"Unknown --policy_initialization={self.cfg.policy_initialization!r}")

    # ---- device / dtype / normalization (eager) --------------------------------------------------

    def model_to_device(self, device: torch.device) -> None:
        """Move every child to ``device``, honoring children that place themselves."""
        for module in self.children():
            if hasattr(module, "model_to_device"):
                module.model_to_device(device)
            else:
                module.to(device)

    def _input_encoder(self) -> Optional[nn.Module]:
        """The encoder that answers device/dtype queries: ``encoders[0]``, else a subclass's ``encoder``."""
        encoder = self.encoders[0] if self.encoders else getattr(self, "encoder", None)
        return encoder if hasattr(encoder, "device_for_input_tensor") else None

    def device_for_input_tensor(self, input_tensor_name: str) -> Optional[torch.device]:
        """Device for observation key ``input_tensor_name``."""
        encoder = self._input_encoder()
        if encoder is not None:
            return encoder.device_for_input_tensor(input_tensor_name)
        return model_device(self)

    def type_for_input_tensor(self, input_tensor_name: str) -> torch.dtype:
        """Dtype for observation key ``input_tensor_name``."""
        encoder = self._input_encoder()
        if encoder is not None:
            return encoder.type_for_input_tensor(input_tensor_name)
        return torch.float32

    def memory_format_for_input_tensor(self, input_tensor_name: str) -> torch.memory_format:
        """Memory order of a learner batch of observation key ``input_tensor_name`` (see ``Encoder``)."""
        encoder = self._input_encoder()
        if encoder is not None and hasattr(encoder, "memory_format_for_input_tensor"):
            return encoder.memory_format_for_input_tensor(input_tensor_name)
        return torch.contiguous_format

    def normalize_obs(self, obs: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Observation normalization (updates running statistics in training mode)."""
        return self.obs_normalizer(obs)

    def summaries(self) -> Dict[str, Tensor]:
        """Normalizer statistics for TensorBoard."""
        return self.obs_normalizer.summaries()

    def action_distribution(self) -> Optional[ActionDistribution]:
        """The action distribution of the last eager ``forward``/``forward_tail`` call."""
        return self.last_action_distribution

    # ---- shared output logic ---------------------------------------------------------------------

    def _add_action_outputs(
        self,
        result: Dict[str, Tensor],
        actor_decoder_output: Tensor,
        sample_actions: bool,
        action_mask: Optional[Tensor],
    ) -> None:
        """Add ``action_logits`` (and sampled ``actions`` / ``log_prob_actions``) to ``result``."""
        params = self.action_parameterization.distribution_params(actor_decoder_output)
        result["action_logits"] = params
        if not torch.jit.is_scripting():
            self.last_action_distribution = get_action_distribution(self.action_space, params, action_mask)
        if sample_actions:
            actions, log_prob_actions = self.action_parameterization.distribution_head.sample(params, action_mask)
            result["actions"] = actions
            result["log_prob_actions"] = log_prob_actions

    # ---- forward API: defaults built from encoder / core / decoder / critic_linear / action_parameterization --

    def _require_components(self, method: str, names: Tuple[str, ...]) -> None:
        """Eager check behind the default methods: the components they use must exist."""
        missing = [name for name in names if not hasattr(self, name)]
        if missing:
            raise NotImplementedError(
                f"{type(self).__name__}.{method}: the default implementation uses self.{', self.'.join(missing)}, "
                f"which {type(self).__name__} does not set. Set {', '.join(missing)} in __init__ (as in Sample "
                f"Factory's custom model template) or override {method}()."
            )

    def forward_head(self, normalized_obs_dict: Dict[str, Tensor]) -> Tensor:
        """Encoders: ``[B, ...]`` observations -> ``[B, F]`` (default: ``self.encoder``)."""
        if not torch.jit.is_scripting():
            self._require_components("forward_head", ("encoder",))
        return self.encoder(normalized_obs_dict)

    def forward_core(self, head_output: Tensor, rnn_states: Tensor) -> Tuple[Tensor, Tensor]:
        """Cores: ``(features, rnn_states) -> (core_output, new_rnn_states)`` (default: ``self.core``)."""
        if not torch.jit.is_scripting():
            self._require_components("forward_core", ("core",))
        return self.core(head_output, rnn_states)

    def forward_tail(
        self, core_output: Tensor, values_only: bool, sample_actions: bool, action_mask: Optional[Tensor] = None
    ) -> Dict[str, Tensor]:
        """Decoders and heads: ``values`` and, unless ``values_only``, the action outputs.

        Default: ``self.decoder``, then ``self.critic_linear`` for the values and ``self.action_parameterization``
        for the actions, all on the decoder's output.
        """
        if not torch.jit.is_scripting():
            self._require_components("forward_tail", ("decoder", "critic_linear", "action_parameterization"))
        decoder_output = self.decoder(core_output)
        result: Dict[str, Tensor] = {"values": self.critic_linear(decoder_output).squeeze(1)}
        if not values_only:
            self._add_action_outputs(result, decoder_output, sample_actions, action_mask)
        return _as_output(result)

    def forward(
        self,
        normalized_obs_dict: Dict[str, Tensor],
        rnn_states: Tensor,
        values_only: bool = False,
        action_mask: Optional[Tensor] = None,
    ) -> Dict[str, Tensor]:
        """Full step: head, core, tail (sampling actions) plus ``new_rnn_states``."""
        x = self.forward_head(normalized_obs_dict)
        x, new_rnn_states = self.forward_core(x, rnn_states)
        result = self.forward_tail(x, values_only, True, action_mask)
        result["new_rnn_states"] = new_rnn_states
        return result


def _as_output(result: Dict[str, Tensor]) -> Dict[str, Tensor]:
    # Eager callers get Sample Factory's TensorDict; compiled code keeps the plain dict.
    if not torch.jit.is_scripting():
        return TensorDict(result)
    return result


class ActorCriticSharedWeights(ActorCritic):
    """One encoder -> core -> decoder trunk shared by the policy and the value head."""

    def __init__(self, model_factory, obs_space: ObsSpace, action_space: ActionSpace, cfg: Config):
        super().__init__(obs_space, action_space, cfg)
        self.encoder: Encoder = model_factory.make_model_encoder_func(cfg, obs_space)
        self.encoders = [self.encoder]
        self.core: ModelCore = model_factory.make_model_core_func(cfg, self.encoder.get_out_size())
        self.decoder: Decoder = model_factory.make_model_decoder_func(cfg, self.core.get_out_size())
        decoder_out_size = self.decoder.get_out_size()
        self.critic_linear = nn.Linear(decoder_out_size, 1)
        self.action_parameterization = self.get_action_parameterization(decoder_out_size)
        self.apply(self.initialize_weights)


class ActorCriticSeparateWeights(ActorCritic):
    """Separate encoder/core/decoder for the actor and the critic (``--actor_critic_share_weights=False``).

    Head outputs are concatenated ``[actor | critic]`` and the flat RNN state is ``[actor | critic]``
    (twice the width of the shared model's).
    """

    def __init__(self, model_factory, obs_space: ObsSpace, action_space: ActionSpace, cfg: Config):
        super().__init__(obs_space, action_space, cfg)
        self.actor_encoder: Encoder = model_factory.make_model_encoder_func(cfg, obs_space)
        self.actor_core: ModelCore = model_factory.make_model_core_func(cfg, self.actor_encoder.get_out_size())
        self.critic_encoder: Encoder = model_factory.make_model_encoder_func(cfg, obs_space)
        self.critic_core: ModelCore = model_factory.make_model_core_func(cfg, self.critic_encoder.get_out_size())
        self.encoders = [self.actor_encoder, self.critic_encoder]
        self.cores = [self.actor_core, self.critic_core]
        self.use_rnn: bool = bool(cfg.use_rnn)
        self.actor_head_size: int = self.actor_encoder.get_out_size()
        self.actor_core_size: int = self.actor_core.get_out_size()
        self.actor_decoder: Decoder = model_factory.make_model_decoder_func(cfg, self.actor_core.get_out_size())
        self.critic_decoder: Decoder = model_factory.make_model_decoder_func(cfg, self.critic_core.get_out_size())
        self.decoders = [self.actor_decoder, self.critic_decoder]
        self.critic_linear = nn.Linear(self.critic_decoder.get_out_size(), 1)
        self.action_parameterization = self.get_action_parameterization(self.critic_decoder.get_out_size())
        self.apply(self.initialize_weights)

    def forward_head(self, normalized_obs_dict: Dict[str, Tensor]) -> Tensor:
        return torch.cat((self.actor_encoder(normalized_obs_dict), self.critic_encoder(normalized_obs_dict)), dim=1)

    def forward_core(self, head_output: Tensor, rnn_states: Tensor) -> Tuple[Tensor, Tensor]:
        if not self.use_rnn:
            # Feed-forward: the identity cores would only split and re-concatenate.
            return head_output, rnn_states
        if not torch.jit.is_scripting():
            if isinstance(head_output, nn.utils.rnn.PackedSequence):
                return self._core_rnn_packed(head_output, rnn_states)
        actor_states, critic_states = rnn_states.chunk(2, dim=1)
        actor_head = head_output[:, : self.actor_head_size]
        critic_head = head_output[:, self.actor_head_size :]
        actor_out, new_actor_states = self.actor_core(actor_head, actor_states)
        critic_out, new_critic_states = self.critic_core(critic_head, critic_states)
        return torch.cat((actor_out, critic_out), dim=1), torch.cat((new_actor_states, new_critic_states), dim=1)

    def _core_rnn_packed(self, head_output, rnn_states: Tensor):
        """Eager training path: split a PackedSequence column-wise, run both cores, re-join."""
        from torch.nn.utils.rnn import PackedSequence

        actor_states, critic_states = rnn_states.chunk(2, dim=1)
        data = head_output.data

        def repack(x: Tensor) -> PackedSequence:
            return PackedSequence(x, head_output.batch_sizes, head_output.sorted_indices, head_output.unsorted_indices)

        actor_out, new_actor_states = self.actor_core(repack(data[:, : self.actor_head_size]), actor_states)
        critic_out, new_critic_states = self.critic_core(repack(data[:, self.actor_head_size :]), critic_states)
        outputs = repack(torch.cat((actor_out.data, critic_out.data), dim=1))
        return outputs, torch.cat((new_actor_states, new_critic_states), dim=1)

    def _split_core_output(self, core_output: Tensor) -> Tuple[Tensor, Tensor]:
        split = self.actor_core_size if self.use_rnn else self.actor_head_size
        return core_output[:, :split], core_output[:, split:]

    def forward_tail(
        self, core_output: Tensor, values_only: bool, sample_actions: bool, action_mask: Optional[Tensor] = None
    ) -> Dict[str, Tensor]:
        actor_core_output, critic_core_output = self._split_core_output(core_output)
        critic_decoder_output = self.critic_decoder(critic_core_output)
        result: Dict[str, Tensor] = {"values": self.critic_linear(critic_decoder_output).squeeze(1)}
        if not values_only:
            actor_decoder_output = self.actor_decoder(actor_core_output)
            self._add_action_outputs(result, actor_decoder_output, sample_actions, action_mask)
        return _as_output(result)


def obs_space_without_action_mask(obs_space: ObsSpace) -> ObsSpace:
    """The model's observation space: the env's Dict space minus the ``action_mask`` key."""
    if isinstance(obs_space, spaces.Dict) and ACTION_MASK_KEY in obs_space.spaces:
        return spaces.Dict({k: v for k, v in obs_space.spaces.items() if k != ACTION_MASK_KEY})
    return obs_space


def default_make_actor_critic_func(cfg: Config, obs_space: ObsSpace, action_space: ActionSpace) -> ActorCritic:
    """Shared- or separate-weights actor-critic (``--actor_critic_share_weights``) from the global factory."""
    from pysf.algo.utils.context import global_model_factory

    model_factory = global_model_factory()
    obs_space = obs_space_without_action_mask(obs_space)
    if cfg.actor_critic_share_weights:
        return ActorCriticSharedWeights(model_factory, obs_space, action_space, cfg)
    return ActorCriticSeparateWeights(model_factory, obs_space, action_space, cfg)


def create_actor_critic(cfg: Config, obs_space: ObsSpace, action_space: ActionSpace) -> ActorCritic:
    """Build the actor-critic with the (possibly user-registered) global model factory."""
    from pysf.algo.utils.context import global_model_factory

    return global_model_factory().make_actor_critic_func(cfg, obs_space, action_space)
