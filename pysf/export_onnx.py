"""Export a trained policy to ONNX (Sample Factory's ``sample_factory.export_onnx``).

``export_onnx(cfg, f)`` loads the experiment's ``config.json`` and latest (``--load_checkpoint_kind``)
checkpoint and writes one self-contained ``.onnx`` file. ``python -m pysf.export_onnx --env ... --experiment
...`` does the same from the command line and writes ``<experiment>.onnx`` into the current directory, as
Sample Factory's ``sf_examples.export_onnx_gym_env`` does (``--onnx_file`` picks another path).

The graph has Sample Factory's interface:

- inputs: one per observation key, in the observation space's order (``obs`` for envs with a single
  observation, ``action_mask`` included when the env has one), with the env's dtypes (e.g. uint8 images),
  plus ``rnn_states [B, get_rnn_size(cfg)]`` for ``--use_rnn`` models;
- outputs: ``output_actions`` (int32 ``[B]`` for Discrete, float32 ``[B, k]`` for Box, int32 ``[B, n]`` for
  MultiDiscrete) plus ``output_rnn_states`` for RNN models. A Tuple action space has one output per
  component instead, ``output_actions_0``, ``output_actions_1``, ... (Sample Factory names only the first).

Observation casting and normalization are inside the graph (the normalizer is part of the model), and so
are action masks. Actions are sampled from the policy's distribution unless ``--eval_deterministic``, which
exports the most likely actions (as Sample Factory does). Unlike Sample Factory, RNN models also get a
dynamic batch dimension (Sample Factory exports them for batch 1 only).

Exporting uses torch's ``torch.export``-based ONNX exporter, which needs the ``onnx`` and ``onnxscript``
packages (``onnxruntime`` runs the file).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import inspect
import logging
import os
import sys
import types
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import gymnasium as gym
import torch
from torch import Tensor, nn

from pysf.algo.inference.policy_module import make_inference_module
from pysf.algo.utils.action_distributions import calc_num_actions
from pysf.algo.utils.env_info import EnvInfo, as_dict_space, extract_env_info, obtain_env_info
from pysf.algo.utils.misc import ExperimentStatus
from pysf.enjoy import load_state_dict
from pysf.model.actor_critic import ActorCritic, create_actor_critic
from pysf.model.model_utils import get_rnn_size
from pysf.utils.typing import Config, StatusCode

log = logging.getLogger("pysf")

RNN_STATES_INPUT = "rnn_states"
ACTIONS_OUTPUT = "output_actions"
RNN_STATES_OUTPUT = "output_rnn_states"

# Packages torch's ONNX exporter imports (pip name -> import name).
_EXPORTER_PACKAGES = {"onnx": "onnx", "onnxscript": "onnxscript"}

# The batch size of the example inputs the graph is traced with: not 1, which torch.export would
# specialize on (and then refuse a dynamic batch dimension).
_EXAMPLE_BATCH_SIZE = 2

ExporterOutput = Union[Tensor, Tuple[Tensor, ...]]


# ---- the module that becomes the graph ---------------------------------------------------------


class OnnxExporter(nn.Module):
    """The exported computation: raw observations (+ RNN states) -> env actions (+ new RNN states).

    Call it like the graph: ``exporter(**inputs)`` with one ``[B, ...]`` tensor per observation key (and
    ``rnn_states`` for RNN models). Returns the actions, or ``(actions, new_rnn_states)`` for RNN models;
    for a Tuple action space the actions are one tensor per component. ``cfg.eval_deterministic`` is
    read at every call, so the same object can be traced sampling or deterministic.
    """

    actor_critic: ActorCritic
    cfg: Config
    env_info: EnvInfo

    def __init__(self, cfg: Config, env_info: EnvInfo, actor_critic: ActorCritic):
        super().__init__()
        self.cfg = cfg
        self.env_info = env_info
        self.actor_critic = actor_critic
        # pysf's inference contract: casts, normalization, action masks and argmax live there.
        self.policy = make_inference_module(actor_critic, env_info.obs_space)
        self.use_rnn = bool(cfg.use_rnn)
        self.rnn_size = get_rnn_size(cfg)
        self.obs_keys: List[str] = list(env_info.obs_space.spaces.keys())

    @property
    def input_names(self) -> List[str]:
        """Graph inputs: the observation keys, then ``rnn_states`` for RNN models."""
        return self.obs_keys + ([RNN_STATES_INPUT] if self.use_rnn else [])

    @property
    def output_names(self) -> List[str]:
        """Graph outputs: ``output_actions`` (one per Tuple component), then ``output_rnn_states`` for RNNs."""
        space = self.env_info.action_space
        if isinstance(space, gym.spaces.Tuple):
            names = [f"{ACTIONS_OUTPUT}_{i}" for i in range(len(space.spaces))]
        else:
            names = [ACTIONS_OUTPUT]
        return names + ([RNN_STATES_OUTPUT] if self.use_rnn else [])

    def forward(self, **inputs: Tensor) -> ExporterOutput:
        unexpected = sorted(set(inputs) - set(self.input_names))
        missing = [name for name in self.input_names if name not in inputs]
        if unexpected or missing:
            raise TypeError(
                f"OnnxExporter takes the inputs {self.input_names}; missing {missing}, unexpected {unexpected}"
            )
        obs = {key: inputs[key] for key in self.obs_keys}
        if self.use_rnn:
            rnn_states = inputs[RNN_STATES_INPUT]
        else:
            # The identity core passes this placeholder through; it is not part of the graph's interface.
            batch_size = obs[self.obs_keys[0]].shape[0]
            rnn_states = torch.zeros(batch_size, self.rnn_size, dtype=torch.float32)
        deterministic = bool(getattr(self.cfg, "eval_deterministic", False))
        result = self.policy(obs, rnn_states, deterministic)
        actions = _env_actions(result["actions"], self.env_info.action_space)
        if self.use_rnn:
            return (*actions, result["new_rnn_states"])
        return actions[0] if len(actions) == 1 else actions


def _env_actions(actions: Tensor, action_space: gym.Space) -> Tuple[Tensor, ...]:
    """Policy actions -> what the env takes, one tensor per component (Sample Factory's dtypes and shapes)."""
    batch_size = actions.shape[0]
    if isinstance(action_space, gym.spaces.Tuple):
        if any(isinstance(space, gym.spaces.Tuple) for space in action_space.spaces):
            raise NotImplementedError(f"ONNX export does not support nested Tuple action spaces ({action_space})")
        columns = actions.reshape(batch_size, -1)
        widths = [calc_num_actions(space) for space in action_space.spaces]
        parts = torch.split(columns, widths, dim=1)
        return tuple(_env_actions(part, space)[0] for part, space in zip(parts, action_space.spaces))
    if isinstance(action_space, gym.spaces.Discrete):
        # pysf's envs get index + start (the rollout workers do the same); int32 as in Sample Factory.
        index = actions.reshape(batch_size).to(torch.int32)
        return (index + int(action_space.start) if int(action_space.start) != 0 else index,)
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        return (actions.reshape(batch_size, -1).to(torch.int32),)
    if isinstance(action_space, gym.spaces.Box):
        return (actions.reshape(batch_size, -1).to(torch.float32),)
    raise NotImplementedError(
        f"ONNX export supports Discrete, Box, MultiDiscrete and Tuple action spaces, not {action_space}"
    )


class _DictInputGraph(nn.Module):
    """Gives ``torch.export`` one dict argument: it cannot trace ``**kwargs`` forwards with dynamic shapes.

    The dict's tensors become the graph inputs in insertion order, so ``input_names`` line up.
    """

    def __init__(self, exporter: OnnxExporter):
        super().__init__()
        self.exporter = exporter

    def forward(self, inputs: Dict[str, Tensor]) -> ExporterOutput:
        return self.exporter(**inputs)


# ---- building the exporter from an experiment --------------------------------------------------


@contextlib.contextmanager
def _torch_jit_disabled() -> Iterator[None]:
    """Build without TorchScript: a ``torch.jit.script``-ed piece of a custom model cannot be exported."""
    state = torch.jit._state  # type: ignore[attr-defined]
    was_enabled = bool(state._enabled.enabled)
    state.disable()
    try:
        yield
    finally:
        if was_enabled:
            state.enable()


def _load_exporter(cfg: Config, env_info: EnvInfo, enable_jit: bool) -> OnnxExporter:
    """The actor-critic with the experiment's checkpoint, on the CPU, in eval mode, wrapped for export."""
    if enable_jit:
        actor_critic = create_actor_critic(cfg, env_info.obs_space, env_info.action_space)
    else:
        with _torch_jit_disabled():
            actor_critic = create_actor_critic(cfg, env_info.obs_space, env_info.action_space)
    actor_critic.model_to_device(torch.device("cpu"))
    load_state_dict(cfg, actor_critic, torch.device("cpu"))
    # eval(): the observation normalizer must not update its statistics while being traced.
    return OnnxExporter(cfg, env_info, actor_critic.eval()).eval()


def create_onnx_exporter(cfg: Config, env: Any, enable_jit: bool = False) -> OnnxExporter:
    """The exporter for ``cfg``'s experiment: model built for ``env``'s spaces, latest checkpoint loaded.

    ``env`` is any object with ``observation_space`` and ``action_space`` (e.g. ``pysf.enjoy.make_env(cfg)``).
    ``cfg`` must already hold the experiment's configuration (``load_from_checkpoint``). With
    ``enable_jit=False`` (the default, as in Sample Factory) the model is built with TorchScript disabled.

    Raises:
        FileNotFoundError: the experiment has no checkpoint.
    """
    return _load_exporter(cfg, extract_env_info(env, cfg), enable_jit)


# ---- example inputs --------------------------------------------------------------------------------


def sample_space(space: gym.Space) -> Any:
    """One sample of ``space``: an int for Discrete, a tensor for Box/MultiDiscrete/MultiBinary, nested for Dict/Tuple."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.sample())
    if isinstance(space, (gym.spaces.Box, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
        return torch.from_numpy(space.sample())
    if isinstance(space, gym.spaces.Dict):
        return {key: sample_space(sub_space) for key, sub_space in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(sample_space(sub_space) for sub_space in space.spaces)
    raise NotImplementedError(f"Cannot sample observations of space {space}")


def unsqueeze_args(args: Any) -> Any:
    """Add a leading batch dimension of 1 to every tensor (and int) of a sample, keeping its nesting."""
    if isinstance(args, int):
        return torch.tensor(args).unsqueeze(0)
    if isinstance(args, Tensor):
        return args.unsqueeze(0)
    if isinstance(args, dict):
        return {key: unsqueeze_args(value) for key, value in args.items()}
    if isinstance(args, tuple):
        return tuple(unsqueeze_args(value) for value in args)
    raise NotImplementedError(f"Cannot batch a value of type {type(args).__name__}")


def generate_args(space: gym.Space, batch_size: int = 1) -> Dict[str, Tensor]:
    """Random graph inputs for observation space ``space``: ``{key: [batch_size, ...] tensor}``.

    A non-Dict space is the single key ``obs``, as pysf's models see it. Sub-spaces must be flat
    (Box, Discrete, MultiDiscrete, MultiBinary).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    dict_space = as_dict_space(space)
    for key, sub_space in dict_space.spaces.items():
        if isinstance(sub_space, (gym.spaces.Dict, gym.spaces.Tuple)):
            raise NotImplementedError(f"Observation key {key!r} is a nested {type(sub_space).__name__} space: not supported")
    samples = [unsqueeze_args(sample_space(dict_space)) for _ in range(batch_size)]
    return {key: torch.cat([sample[key] for sample in samples], dim=0) for key in dict_space.spaces.keys()}


def generate_rnn_states(cfg: Config, batch_size: int = 1) -> Tensor:
    """Zero RNN states ``[batch_size, get_rnn_size(cfg)]`` (the state at an episode start)."""
    return torch.zeros(batch_size, get_rnn_size(cfg), dtype=torch.float32)


# ---- named positional inputs (Sample Factory's helpers for TorchScript-based export) ---------------


def create_forward(original_forward: Callable[..., Any], arg_names: List[str]) -> Callable[..., Any]:
    """A ``forward(self, <arg_names>...)`` method that calls ``original_forward(**named_args)``.

    Its signature names the arguments, so exporters that read ``inspect.signature`` see real inputs
    instead of ``**kwargs``.
    """
    names = list(arg_names)

    def forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
        bound = dict(zip(names, args))
        overlap = set(bound) & set(kwargs)
        if len(args) > len(names) or overlap:
            raise TypeError(f"forward takes the inputs {names}")
        bound.update(kwargs)
        return original_forward(**bound)

    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names]
    forward.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return forward


def patch_forward(model: nn.Module, input_names: List[str]) -> None:
    """Give ``model`` a ``forward`` with one named positional argument per input (see :func:`create_forward`)."""
    model.forward = types.MethodType(create_forward(model.forward, input_names), model)  # type: ignore[method-assign]


# ---- export ----------------------------------------------------------------------------------------


def _require_exporter_packages() -> None:
    missing = [pip_name for pip_name, module in _EXPORTER_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise ImportError(
            f"ONNX export needs the package(s) {', '.join(missing)}: pip install {' '.join(missing)} "
            f"(pip install onnxruntime too, to run the exported file)"
        )


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Hide the exporter's notices about torch internals (nothing the user can act on); keep the rest."""
    # torch: "torchvision is not installed. Skipping torchvision::nms"; onnxscript / onnx_ir: the graph
    # optimizer's progress ("Removed 22 unused nodes") at INFO.
    quieted = {
        "torch.onnx._internal.exporter._registration": logging.ERROR,
        "onnxscript": logging.WARNING,
        "onnx_ir": logging.WARNING,
    }
    levels = {name: logging.getLogger(name).level for name in quieted}
    for name, level in quieted.items():
        logging.getLogger(name).setLevel(level)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*_check_is_size will be removed.*")
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
        warnings.filterwarnings("ignore", message=r".*The axis name: .* will not be used.*")
        # torch.nn.RNN caches flat weight views; the exporter notes they were assigned while tracing.
        warnings.filterwarnings("ignore", message=r".*_flat_weights.*were assigned during export.*")
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def write_onnx(model: OnnxExporter, f: Union[str, os.PathLike]) -> None:
    """Trace ``model`` with a dynamic batch dimension and write the ONNX file ``f`` (weights inside it)."""
    _require_exporter_packages()
    os.makedirs(os.path.dirname(os.path.abspath(f)), exist_ok=True)
    inputs = generate_args(model.env_info.obs_space, _EXAMPLE_BATCH_SIZE)
    if model.use_rnn:
        inputs[RNN_STATES_INPUT] = generate_rnn_states(model.cfg, _EXAMPLE_BATCH_SIZE)
    input_names = list(inputs.keys())
    batch = torch.export.Dim("batch_size")
    with _quiet_exporter(), torch.no_grad():
        torch.onnx.export(
            _DictInputGraph(model).eval(),
            (),
            str(f),
            kwargs={"inputs": inputs},
            input_names=input_names,
            output_names=model.output_names,
            dynamic_shapes={"inputs": {name: {0: batch} for name in input_names}},
            dynamo=True,
            external_data=False,  # one self-contained file; pysf's models are far below ONNX's 2 GB limit
            verbose=False,
        )


def export_onnx(cfg: Config, f: Union[str, os.PathLike]) -> StatusCode:
    """Write the experiment's latest policy to the ONNX file ``f``; returns an ``ExperimentStatus``.

    ``cfg`` is the evaluation configuration (``--env``, ``--experiment``, ``--train_dir``...); the saved
    ``config.json`` is loaded first (flags passed explicitly win). Missing experiment or checkpoint: logged,
    status FAILURE. Missing ``onnx``/``onnxscript``: ImportError naming the packages.
    """
    from pysf.cfg.arguments import load_from_checkpoint

    _require_exporter_packages()
    try:
        cfg = load_from_checkpoint(cfg)
        model = _load_exporter(cfg, obtain_env_info(cfg), enable_jit=False)
    except FileNotFoundError as exc:
        log.error("%s", exc)
        return ExperimentStatus.FAILURE
    write_onnx(model, f)
    log.info("ONNX model saved to %s (inputs %s, outputs %s)", os.path.abspath(f), model.input_names, model.output_names)
    return ExperimentStatus.SUCCESS


def add_export_args(parser: argparse.ArgumentParser) -> None:
    """``--onnx_file``, the export command's own flag."""
    parser.add_argument(
        "--onnx_file",
        default=None,
        type=str,
        help="Where to write the ONNX model (missing folders are created); unset: <experiment>.onnx in the "
        "current directory, as in Sample Factory's export example",
    )


def parse_export_args(argv: Optional[List[str]] = None) -> Config:
    """Sample Factory's evaluation flags plus ``--onnx_file``, with pysf's native-env defaults."""
    from pysf.train import parse_train_args

    return parse_train_args(argv, evaluation=True, add_extra_args=add_export_args)


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m pysf.export_onnx --env ... --experiment ... [--train_dir ...] [--onnx_file ...]``."""
    from pysf.utils.utils import setup_logging

    setup_logging()
    cfg = parse_export_args(argv)
    path = os.path.abspath(cfg.onnx_file or f"{cfg.experiment}.onnx")
    status = export_onnx(cfg, path)
    if status == ExperimentStatus.SUCCESS:
        print(f"ONNX model written to {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
