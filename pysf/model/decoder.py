"""Decoders: core output -> features for the action and value heads (Sample Factory's ``sample_factory.model.decoder``)."""

from __future__ import annotations

from torch import Tensor

from pysf.algo.utils.torch_utils import calc_num_elements
from pysf.model.model_utils import ModelModule, create_mlp, nonlinearity
from pysf.utils.typing import Config


class Decoder(ModelModule):
    """Base of all decoders: ``forward(core_output) -> Tensor[B, F]``; subclasses implement ``get_out_size()``."""

    def forward(self, core_output: Tensor) -> Tensor:
        """The contract: core output ``[B, F]`` -> features ``[B, get_out_size()]`` for the action and value heads.

        pysf compiles subclasses with these types even where their ``forward`` is not annotated.
        """
        raise NotImplementedError()


class MlpDecoder(Decoder):
    """MLP of ``--decoder_mlp_layers`` (identity when empty, the default)."""

    def __init__(self, cfg: Config, decoder_input_size: int):
        super().__init__(cfg)
        self.mlp = create_mlp(list(cfg.decoder_mlp_layers), decoder_input_size, nonlinearity(cfg))
        self.decoder_out_size = calc_num_elements(self.mlp, (decoder_input_size,))

    def forward(self, core_output: Tensor) -> Tensor:
        """``[B, core_out] -> [B, F]``."""
        return self.mlp(core_output)

    def get_out_size(self) -> int:
        return self.decoder_out_size


def default_make_decoder_func(cfg: Config, decoder_input_size: int) -> Decoder:
    """The default decoder factory."""
    return MlpDecoder(cfg, decoder_input_size)
