"""Building blocks shared by the model components (Sample Factory's ``sample_factory.model.model_utils``)."""

from __future__ import annotations

from typing import List

import torch
from torch import nn

from pysf.utils.typing import Config


class Configurable:
    """Anything that keeps the experiment config as ``self.cfg``."""

    # TorchScript would otherwise try (and fail) to compile the config's class for every module that holds
    # it, re-parsing argparse's source each time: most of a small model's compile time.
    __jit_ignored_attributes__ = ["cfg"]

    def __init__(self, cfg: Config):
        self.cfg = cfg


class ModelModule(nn.Module, Configurable):
    """Base of Encoder, ModelCore and Decoder: an ``nn.Module`` that knows its output width.

    Keep ``forward`` TorchScript-compilable (type-annotated arguments, no ``*args``/``**kwargs``, no
    ``torch.distributions``, read config values in ``__init__`` rather than ``self.cfg`` in ``forward``):
    pysf compiles the model to run it from C++.
    """

    def __init__(self, cfg: Config):
        nn.Module.__init__(self)
        Configurable.__init__(self, cfg)

    def get_out_size(self) -> int:
        """Width of the ``[B, F]`` output."""
        raise NotImplementedError()


def nonlinearity(cfg: Config, inplace: bool = False) -> nn.Module:
    """The activation chosen by ``--nonlinearity`` (elu, relu or tanh)."""
    if cfg.nonlinearity == "elu":
        return nn.ELU(inplace=inplace)
    if cfg.nonlinearity == "relu":
        return nn.ReLU(inplace=inplace)
    if cfg.nonlinearity == "tanh":
        return nn.Tanh()
    raise ValueError(f"Unknown --nonlinearity={cfg.nonlinearity!r}: use elu, relu or tanh")


def fc_layer(in_features: int, out_features: int, bias: bool = True) -> nn.Linear:
    """A fully connected layer."""
    return nn.Linear(in_features, out_features, bias=bias)


def create_mlp(layer_sizes: List[int], input_size: int, activation: nn.Module) -> nn.Module:
    """Linear + activation for each entry of ``layer_sizes`` (``nn.Identity`` when empty)."""
    layers: List[nn.Module] = []
    for size in layer_sizes:
        layers.extend([fc_layer(input_size, size), activation])
        input_size = size
    if layers:
        return nn.Sequential(*layers)
    return nn.Identity()


def get_rnn_size(cfg: Config) -> int:
    """Width of the flat RNN state vector the rollout engine stores per agent.

    ``rnn_size * rnn_num_layers`` with an RNN, else 1 (a placeholder the identity core passes through);
    x2 for LSTM (h and c) and x2 for separate actor/critic weights.
    """
    size = cfg.rnn_size * cfg.rnn_num_layers if cfg.use_rnn else 1
    if cfg.rnn_type == "lstm":
        size *= 2
    if not cfg.actor_critic_share_weights:
        size *= 2
    return size


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU for a model without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
