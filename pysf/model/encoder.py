"""Encoders: observations -> a flat feature vector ``[B, F]`` (Sample Factory's ``sample_factory.model.encoder``).

The default encoder (``MultiInputEncoder``) gives every observation key its own sub-encoder: an MLP for
1-D keys, a conv net or ResNet (``--encoder_conv_architecture``) for images in CHW layout, and
concatenates their outputs in sorted key order.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import torch
from gymnasium import spaces
from torch import Tensor, nn

from pysf.algo.utils.torch_utils import calc_num_elements
from pysf.model.model_utils import ModelModule, create_mlp, model_device, nonlinearity
from pysf.utils.typing import Config, ObsSpace


class Encoder(ModelModule):
    """Base of all encoders: ``forward(obs_dict) -> Tensor[B, F]``; subclasses implement ``get_out_size()``.

    Observations are moved to ``device_for_input_tensor(key)`` and cast to ``type_for_input_tensor(key)``
    before normalization; override these to keep a key on another device or dtype (e.g. token ids).
    """

    def __init__(self, cfg: Config):
        super().__init__(cfg)

    def forward(self, obs_dict: Dict[str, Tensor]) -> Tensor:
        """The contract: a dict of normalized observations ``[B, ...]`` -> features ``[B, get_out_size()]``.

        pysf compiles subclasses with these types even where their ``forward`` is not annotated.
        """
        raise NotImplementedError()

    def model_to_device(self, device: torch.device) -> None:
        """Move the encoder to ``device`` (override to keep parts elsewhere)."""
        self.to(device)

    def device_for_input_tensor(self, input_tensor_name: str) -> Optional[torch.device]:
        """Device where observation ``input_tensor_name`` must live (the model's device by default)."""
        return model_device(self)

    def type_for_input_tensor(self, input_tensor_name: str) -> torch.dtype:
        """Dtype observation ``input_tensor_name`` is converted to before the model (float32 by default)."""
        return torch.float32

    def memory_format_for_input_tensor(self, input_tensor_name: str) -> torch.memory_format:
        """Memory order the learner lays a batch of observation ``input_tensor_name`` out in, once per batch
        (contiguous by default; pysf's conv encoders take channels-last images, see ``channels_last``)."""
        return torch.contiguous_format


class MlpEncoder(Encoder):
    """Linear + activation per ``--encoder_mlp_layers`` entry over a 1-D observation tensor."""

    def __init__(self, cfg: Config, obs_space: ObsSpace):
        super().__init__(cfg)
        self.mlp_head = create_mlp(list(cfg.encoder_mlp_layers), int(obs_space.shape[0]), nonlinearity(cfg))
        self.encoder_out_size = calc_num_elements(self.mlp_head, obs_space.shape)

    def forward(self, obs: Tensor) -> Tensor:
        """``[B, D] -> [B, F]``."""
        return self.mlp_head(obs)

    def get_out_size(self) -> int:
        return self.encoder_out_size


# Conv filter specs: (in_channels or -1 for the observation's channels, out_channels, kernel, stride).
_CONV_ARCHITECTURES: Dict[str, List[Sequence[int]]] = {
    "convnet_simple": [(-1, 32, 8, 4), (32, 64, 4, 2), (64, 128, 3, 2)],
    "convnet_impala": [(-1, 16, 8, 4), (16, 32, 4, 2)],
    "convnet_atari": [(-1, 32, 8, 4), (32, 64, 4, 2), (64, 64, 3, 1)],
}


def channels_last(images: Tensor) -> Tensor:
    """``[B, C, H, W]`` images in channels-last (NHWC) memory order, which PyTorch's CPU convolutions run faster
    on; the values and the shape are the same. Measured on this project's 2-core machine: ``convnet_simple`` on
    4x84x84 at batch 256, forward +15% and forward+backward +42%; ``resnet_impala`` at batch 64, 2x and +45%.
    The weights keep their layout (converting them too gained nothing), so checkpoints do not change."""
    return images.contiguous(memory_format=torch.channels_last)


class ConvEncoderImpl(nn.Module):
    """Conv layers (valid padding, activation after each, optional ``"maxpool_2x2"``) + flatten + MLP."""

    def __init__(
        self,
        obs_shape: Sequence[int],
        conv_filters: List[Union[str, Sequence[int]]],
        extra_mlp_layers: List[int],
        activation: nn.Module,
    ):
        super().__init__()
        conv_layers: List[nn.Module] = []
        for layer in conv_filters:
            if layer == "maxpool_2x2":
                conv_layers.append(nn.MaxPool2d((2, 2)))
            elif isinstance(layer, (list, tuple)):
                inp_ch, out_ch, filter_size, stride = layer
                conv_layers.append(nn.Conv2d(inp_ch, out_ch, filter_size, stride=stride))
                conv_layers.append(activation)
            else:
                raise ValueError(f"Unknown conv layer spec {layer!r}")
        self.conv_head = nn.Sequential(*conv_layers)
        self.conv_head_out_size: int = calc_num_elements(self.conv_head, obs_shape)
        self.mlp_layers = create_mlp(list(extra_mlp_layers), self.conv_head_out_size, activation)

    def forward(self, obs: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, F]``."""
        x = self.conv_head(channels_last(obs))
        x = x.contiguous().view(-1, self.conv_head_out_size)  # flattened in C, H, W order, as without it
        return self.mlp_layers(x)


class ConvEncoder(Encoder):
    """Image encoder for ``convnet_simple``, ``convnet_impala`` and ``convnet_atari``."""

    def __init__(self, cfg: Config, obs_space: ObsSpace):
        super().__init__(cfg)
        architecture = cfg.encoder_conv_architecture
        if architecture not in _CONV_ARCHITECTURES:
            raise NotImplementedError(
                f"Unknown --encoder_conv_architecture={architecture!r}: use one of {sorted(_CONV_ARCHITECTURES)} "
                f"or resnet_impala"
            )
        input_channels = int(obs_space.shape[0])
        conv_filters = [
            (input_channels if inp == -1 else inp, out, kernel, stride)
            for inp, out, kernel, stride in _CONV_ARCHITECTURES[architecture]
        ]
        self.enc = ConvEncoderImpl(obs_space.shape, conv_filters, list(cfg.encoder_conv_mlp_layers), nonlinearity(cfg))
        self.encoder_out_size = calc_num_elements(self.enc, obs_space.shape)

    def forward(self, obs: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, F]``."""
        return self.enc(obs)

    def memory_format_for_input_tensor(self, input_tensor_name: str) -> torch.memory_format:
        return torch.channels_last

    def get_out_size(self) -> int:
        return self.encoder_out_size


class ResBlock(nn.Module):
    """Pre-activation residual block: act, conv3x3, act, conv3x3, + input."""

    def __init__(self, cfg: Config, input_ch: int, output_ch: int):
        super().__init__()
        self.res_block_core = nn.Sequential(
            nonlinearity(cfg),
            nn.Conv2d(input_ch, output_ch, kernel_size=3, stride=1, padding=1),
            nonlinearity(cfg),
            nn.Conv2d(output_ch, output_ch, kernel_size=3, stride=1, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Residual update of ``x``."""
        return self.res_block_core(x) + x


class ResnetEncoder(Encoder):
    """IMPALA ResNet (``resnet_impala``): 3 stages of conv3x3 + maxpool + 2 residual blocks, then an MLP."""

    def __init__(self, cfg: Config, obs_space: ObsSpace):
        super().__init__(cfg)
        if cfg.encoder_conv_architecture != "resnet_impala":
            raise NotImplementedError(f"Unknown resnet architecture {cfg.encoder_conv_architecture!r}")
        resnet_conf = [[16, 2], [32, 2], [32, 2]]
        layers: List[nn.Module] = []
        curr_input_channels = int(obs_space.shape[0])
        for out_channels, res_blocks in resnet_conf:
            layers.extend(
                [
                    nn.Conv2d(curr_input_channels, out_channels, kernel_size=3, stride=1, padding=1),
                    nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
                ]
            )
            layers.extend(ResBlock(cfg, out_channels, out_channels) for _ in range(res_blocks))
            curr_input_channels = out_channels
        activation = nonlinearity(cfg)
        layers.append(activation)
        self.conv_head = nn.Sequential(*layers)
        self.conv_head_out_size: int = calc_num_elements(self.conv_head, obs_space.shape)
        self.mlp_layers = create_mlp(list(cfg.encoder_conv_mlp_layers), self.conv_head_out_size, activation)
        self.encoder_out_size = calc_num_elements(self.mlp_layers, (self.conv_head_out_size,))

    def forward(self, obs: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, F]``."""
        x = self.conv_head(channels_last(obs))
        x = x.contiguous().view(-1, self.conv_head_out_size)  # flattened in C, H, W order, as without it
        return self.mlp_layers(x)

    def get_out_size(self) -> int:
        return self.encoder_out_size

    def memory_format_for_input_tensor(self, input_tensor_name: str) -> torch.memory_format:
        return torch.channels_last


def make_img_encoder(cfg: Config, obs_space: ObsSpace) -> Encoder:
    """Conv net or ResNet image encoder according to ``--encoder_conv_architecture``."""
    if cfg.encoder_conv_architecture.startswith("convnet"):
        return ConvEncoder(cfg, obs_space)
    if cfg.encoder_conv_architecture.startswith("resnet"):
        return ResnetEncoder(cfg, obs_space)
    raise NotImplementedError(f"Unknown --encoder_conv_architecture={cfg.encoder_conv_architecture!r}")


class MultiInputEncoder(Encoder):
    """One sub-encoder per observation key (sorted), outputs concatenated on dim 1."""

    def __init__(self, cfg: Config, obs_space: ObsSpace):
        super().__init__(cfg)
        self.obs_keys: List[str] = sorted(obs_space.keys())
        self.encoders = nn.ModuleDict()
        out_size = 0
        for obs_key in self.obs_keys:
            shape = obs_space[obs_key].shape
            if len(shape) == 1:
                encoder_fn = MlpEncoder
            elif _is_image_shape(shape):
                encoder_fn = make_img_encoder
            else:
                raise NotImplementedError(
                    f"Observation key {obs_key!r} has scalar shape {shape}: wrap it as a Box of shape (1,)"
                )
            self.encoders[obs_key] = encoder_fn(cfg, obs_space[obs_key])
            out_size += self.encoders[obs_key].get_out_size()
        self.encoder_out_size = out_size

    def forward(self, obs_dict: Dict[str, Tensor]) -> Tensor:
        """Encode every key and concatenate (a single key is returned as is)."""
        encodings: List[Tensor] = []
        for key, encoder in self.encoders.items():
            encodings.append(encoder(obs_dict[key]))
        if len(encodings) == 1:
            return encodings[0]
        return torch.cat(encodings, 1)

    def memory_format_for_input_tensor(self, input_tensor_name: str) -> torch.memory_format:
        encoder = self.encoders[input_tensor_name] if input_tensor_name in self.encoders else None
        if isinstance(encoder, Encoder):
            return encoder.memory_format_for_input_tensor(input_tensor_name)
        return torch.contiguous_format

    def get_out_size(self) -> int:
        return self.encoder_out_size


def _is_image_shape(shape: Sequence[int]) -> bool:
    """The rule the default encoder picks convolutions by: 2 or more dimensions."""
    return len(shape) > 1


def has_conv_encoder(obs_space: spaces.Space) -> bool:
    """Whether the default encoder of ``obs_space`` (a Dict, or one space) has convolutions: some entry is an image."""
    subspaces = obs_space.spaces.values() if isinstance(obs_space, spaces.Dict) else [obs_space]
    return any(_is_image_shape(subspace.shape or ()) for subspace in subspaces)


def default_make_encoder_func(cfg: Config, obs_space: ObsSpace) -> Encoder:
    """The default encoder factory: ``MultiInputEncoder`` over a Dict observation space."""
    if not isinstance(obs_space, spaces.Dict):
        raise ValueError(f"pysf models expect a Dict observation space (non-dict spaces are wrapped as Dict(obs=...)), got {obs_space}")
    return MultiInputEncoder(cfg, obs_space)
