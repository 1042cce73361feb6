"""The model factory: which functions build encoders, cores, decoders and actor-critics.

Each ``register_*`` accepts a function with Sample Factory's factory signature or a component class
(classes are called like factory functions). An ``ActorCritic`` subclass registered as a class may take
Sample Factory's documented constructor ``(model_factory, obs_space, action_space, cfg)``; pysf adapts it
to the factory call ``(cfg, obs_space, action_space)``.
"""

from __future__ import annotations

import inspect
from typing import Callable, Union

from pysf.model.actor_critic import ActorCritic, default_make_actor_critic_func
from pysf.model.core import ModelCore, default_make_core_func
from pysf.model.decoder import Decoder, default_make_decoder_func
from pysf.model.encoder import Encoder, default_make_encoder_func
from pysf.utils.typing import ActionSpace, Config, ObsSpace

MakeActorCriticFunc = Callable[[Config, ObsSpace, ActionSpace], ActorCritic]
MakeEncoderFunc = Callable[[Config, ObsSpace], Encoder]
MakeCoreFunc = Callable[[Config, int], ModelCore]
MakeDecoderFunc = Callable[[Config, int], Decoder]

# Constructor parameter names pysf can route by name when an actor-critic class is registered.
_ACTOR_CRITIC_ARGS = ("model_factory", "obs_space", "action_space", "cfg")


def _check_callable(fn: object, what: str) -> None:
    if not callable(fn):
        raise TypeError(f"register_{what}_factory expects a function or a class, got {fn!r}")


def _constructor_params(cls: type) -> list:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # drop self
    return [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


class ModelFactory:
    """Holds the four factory functions; the global instance is ``global_model_factory()``."""

    def __init__(self) -> None:
        self.make_actor_critic_func: MakeActorCriticFunc = default_make_actor_critic_func
        self.make_model_encoder_func: MakeEncoderFunc = default_make_encoder_func
        self.make_model_core_func: MakeCoreFunc = default_make_core_func
        self.make_model_decoder_func: MakeDecoderFunc = default_make_decoder_func

    def register_actor_critic_factory(self, make_actor_critic_func: Union[MakeActorCriticFunc, type]) -> None:
        """Use ``make_actor_critic_func(cfg, obs_space, action_space)`` or an ``ActorCritic`` class."""
        _check_callable(make_actor_critic_func, "actor_critic")
        if inspect.isclass(make_actor_critic_func):
            make_actor_critic_func = self._adapt_actor_critic_class(make_actor_critic_func)
        self.make_actor_critic_func = make_actor_critic_func

    def _adapt_actor_critic_class(self, cls: type) -> MakeActorCriticFunc:
        params = _constructor_params(cls)
        names = [p.name for p in params]
        if set(names) <= set(_ACTOR_CRITIC_ARGS) and {"obs_space", "action_space", "cfg"} <= set(names):
            order = names  # route by name: works for any argument order
        elif len(params) == 4:
            order = list(_ACTOR_CRITIC_ARGS)  # Sample Factory's documented constructor
        elif len(params) == 3:
            order = ["obs_space", "action_space", "cfg"]  # the ActorCritic base constructor
        else:
            raise TypeError(
                f"Cannot register {cls.__name__} as an actor-critic: its constructor takes {names}; use "
                f"(model_factory, obs_space, action_space, cfg) as in Sample Factory's docs, or register a "
                f"function make(cfg, obs_space, action_space) that builds it"
            )
        factory = self

        def make_actor_critic(cfg: Config, obs_space: ObsSpace, action_space: ActionSpace) -> ActorCritic:
            from pysf.model.actor_critic import obs_space_without_action_mask

            values = dict(
                model_factory=factory, obs_space=obs_space_without_action_mask(obs_space), action_space=action_space, cfg=cfg
            )
            return cls(*[values[name] for name in order])

        make_actor_critic.__name__ = f"make_{cls.__name__}"
        make_actor_critic.__qualname__ = make_actor_critic.__name__
        make_actor_critic.actor_critic_class = cls  # type: ignore[attr-defined]
        return make_actor_critic

    def register_encoder_factory(self, make_encoder_func: Union[MakeEncoderFunc, type]) -> None:
        """Use ``make_encoder_func(cfg, obs_space) -> Encoder`` (or an Encoder class)."""
        _check_callable(make_encoder_func, "encoder")
        self.make_model_encoder_func = make_encoder_func

    def register_model_core_factory(self, make_core_func: Union[MakeCoreFunc, type]) -> None:
        """Use ``make_core_func(cfg, core_input_size) -> ModelCore`` (or a ModelCore class)."""
        _check_callable(make_core_func, "model_core")
        self.make_model_core_func = make_core_func

    def register_core_factory(self, make_core_func: Union[MakeCoreFunc, type]) -> None:
        """Alias of ``register_model_core_factory`` (the name Sample Factory's docs use)."""
        self.register_model_core_factory(make_core_func)

    def register_decoder_factory(self, make_decoder_func: Union[MakeDecoderFunc, type]) -> None:
        """Use ``make_decoder_func(cfg, decoder_input_size) -> Decoder`` (or a Decoder class)."""
        _check_callable(make_decoder_func, "decoder")
        self.make_model_decoder_func = make_decoder_func
