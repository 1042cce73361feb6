"""Cores: the recurrent (or identity) part between encoder and decoder (Sample Factory's ``sample_factory.model.core``).

``forward(head_output, rnn_states) -> (output, new_rnn_states)``. RNN states travel as one flat vector per
agent ``[B, get_rnn_size(cfg)]``; at inference ``head_output`` is ``[B, F]``; in eager training code it
may also be a ``torch.nn.utils.rnn.PackedSequence`` (Sample Factory's learner contract).
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from pysf.model.model_utils import ModelModule
from pysf.utils.typing import Config


class ModelCore(ModelModule):
    """Base of all cores; subclasses set ``self.core_output_size`` (returned by ``get_out_size``)."""

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        self.core_output_size = -1

    def forward(self, head_output: Tensor, rnn_states: Tensor) -> Tuple[Tensor, Tensor]:
        """The contract: ``(features [B, F], rnn_states [B, S]) -> (core output [B, get_out_size()], new states [B, S])``.

        pysf compiles subclasses with these types even where their ``forward`` is not annotated.
        """
        raise NotImplementedError()

    def get_out_size(self) -> int:
        return self.core_output_size


class ModelCoreRNN(ModelCore):
    """GRU or LSTM (``--rnn_type``) with ``--rnn_size`` units and ``--rnn_num_layers`` layers.

    The flat state is ``[B, rnn_size * layers]`` for GRU and ``[B, 2 * rnn_size * layers]`` for LSTM
    (h then c); multi-layer states are stored layer-major per sample.
    """

    # A constant: TorchScript then compiles only the branch for this RNN type (GRU and LSTM take
    # different state types, so the other branch would not type-check).
    __constants__ = ["is_gru"]

    def __init__(self, cfg: Config, input_size: int):
        super().__init__(cfg)
        self.is_gru = cfg.rnn_type == "gru"
        self.rnn_size: int = int(cfg.rnn_size)
        self.rnn_num_layers: int = int(cfg.rnn_num_layers)
        if cfg.rnn_type == "gru":
            self.core = nn.GRU(input_size, cfg.rnn_size, cfg.rnn_num_layers)
        elif cfg.rnn_type == "lstm":
            self.core = nn.LSTM(input_size, cfg.rnn_size, cfg.rnn_num_layers)
        else:
            raise ValueError(f"Unknown --rnn_type={cfg.rnn_type!r}: use gru or lstm")
        self.core_output_size = self.rnn_size

    def forward(self, head_output: Tensor, rnn_states: Tensor) -> Tuple[Tensor, Tensor]:
        """One step for ``[B, F]`` inputs (or a whole PackedSequence in eager training code)."""
        if not torch.jit.is_scripting():
            if isinstance(head_output, PackedSequence):
                return self._forward_packed(head_output, rnn_states)
        x, new_states = self._run(head_output.unsqueeze(0), rnn_states)
        return x.squeeze(0), new_states

    def _forward_packed(self, head_output: PackedSequence, rnn_states: Tensor) -> Tuple[PackedSequence, Tensor]:
        return self._run(head_output, rnn_states)

    def _states_to_layers(self, rnn_states: Tensor) -> Tensor:
        # [B, L * W] -> [L, B, W], the layout torch's RNNs expect.
        return rnn_states.reshape(rnn_states.shape[0], self.rnn_num_layers, -1).permute(1, 0, 2).contiguous()

    def _layers_to_states(self, layer_states: Tensor) -> Tensor:
        return layer_states.permute(1, 0, 2).reshape(layer_states.shape[1], -1)

    def _run(self, x: Tensor, rnn_states: Tensor) -> Tuple[Tensor, Tensor]:
        states = self._states_to_layers(rnn_states)
        if self.is_gru:
            out, new_states = self.core(x, states)
        else:
            h, c = torch.split(states, self.rnn_size, dim=2)
            out, (h, c) = self.core(x, (h.contiguous(), c.contiguous()))
            new_states = torch.cat((h, c), dim=2)
        return out, self._layers_to_states(new_states)


class ModelCoreIdentity(ModelCore):
    """No recurrence: passes features (and the placeholder RNN state) through."""

    def __init__(self, cfg: Config, input_size: int):
        super().__init__(cfg)
        self.core_output_size = input_size

    def forward(self, head_output: Tensor, fake_rnn_states: Tensor) -> Tuple[Tensor, Tensor]:
        """Identity."""
        return head_output, fake_rnn_states


def default_make_core_func(cfg: Config, core_input_size: int) -> ModelCore:
    """The default core factory: ``ModelCoreRNN`` with ``--use_rnn`` else ``ModelCoreIdentity``."""
    if cfg.use_rnn:
        return ModelCoreRNN(cfg, core_input_size)
    return ModelCoreIdentity(cfg, core_input_size)
