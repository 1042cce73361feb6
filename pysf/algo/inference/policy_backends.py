"""Inference back-ends: the native TorchScript policy and the eager Python fallback.

``--inference_backend=auto`` (the default) tries the compiled back-ends in ``AUTO_BACKEND_CHAIN`` order and
falls back to eager Python inference with one log line naming the component that did not compile, the
construct and the cost; ``torchscript`` stops with the full error instead.

Both expose the same interface, the one the rollout engine drives:

* ``forward(obs, rnn_states, deterministic=False) -> (outputs, policy_version)``
* ``update_weights(model_or_state, version)``: copy the learner's current weights in, tagged with the
  learner's policy version; concurrent ``forward`` calls see old or new weights, never a mix.
"""

from __future__ import annotations

import copy
import logging
import threading
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from pysf.algo.inference.compile import (
    ModelCompileError,
    ModelVerificationError,
    compile_inference_module,
    serialize_script_module,
)
from pysf.algo.inference.policy_module import make_inference_module
from pysf.cfg.backends import INFERENCE_BACKENDS, PLANNED_INFERENCE_BACKENDS, inference_backend_problem  # noqa: F401 - INFERENCE_BACKENDS is also this module's public name
from pysf.model.actor_critic import ActorCritic
from pysf.utils.typing import ObsSpace

log = logging.getLogger("pysf")

# What ``auto`` tries, in order, before eager Python inference (AOTInductor joins when pysf has it).
AUTO_BACKEND_CHAIN = ("torchscript",)
EAGER_INFERENCE_COST = (
    "slower: every inference batch runs through the Python interpreter under the GIL instead of pysf's native "
    "loop (about 3x the compiled forward's latency for a small MLP at batch 1, benchmarks/RESULTS.md)"
)
_WRAPPER_PREFIX = "actor_critic."

WeightsSource = Union[nn.Module, Mapping[str, Tensor]]


def model_weights(source: WeightsSource) -> Dict[str, Tensor]:
    """Every parameter and buffer of an actor-critic (or a state dict), by name, detached."""
    if isinstance(source, nn.Module):
        named = dict(source.named_parameters())
        named.update(source.named_buffers())
        return {k: v.detach() for k, v in named.items()}
    return {k: (v.detach() if isinstance(v, Tensor) else v) for k, v in source.items()}


class NativePolicy:
    """The actor-critic compiled with TorchScript and run by pysf's C++ policy object (GIL released)."""

    backend = "torchscript"

    def __init__(self, compiled: torch.jit.ScriptModule, device: Union[str, torch.device] = "cpu"):
        from pysf import _C

        self.device = torch.device(device)
        self._policy = _C.Policy(serialize_script_module(compiled), str(self.device))
        self.state_names: List[str] = list(self._policy.state_names())
        self._cached_source: Optional[nn.Module] = None
        self._cached_tensors: List[Tensor] = []
        if any(not n.startswith(_WRAPPER_PREFIX) for n in self.state_names):
            raise RuntimeError(f"unexpected weight names in the compiled module: {self.state_names[:5]}")

    @property
    def native(self):
        """The underlying ``pysf._C.Policy`` (for C++ components that drive it directly)."""
        return self._policy

    @property
    def version(self) -> int:
        """Policy version of the current weights."""
        return int(self._policy.version)

    def forward(
        self, obs: Dict[str, Tensor], rnn_states: Tensor, deterministic: bool = False
    ) -> Tuple[Dict[str, Tensor], int]:
        """One batch through the compiled model; returns outputs and the version of the weights used."""
        return self._policy.forward(obs, rnn_states, deterministic)

    def update_weights(self, source: WeightsSource, version: int) -> None:
        """Copy every weight of ``source`` (the learner's actor-critic or its state dict) in."""
        if isinstance(source, nn.Module) and self._cached_source is source:
            # The learner publishes after every SGD step: its parameter tensors are updated in place, so
            # the ordered list built the first time stays valid.
            self._policy.update_weights_list(self._cached_tensors, int(version))
            return
        weights = model_weights(source)
        names = [n[len(_WRAPPER_PREFIX) :] for n in self.state_names]
        missing = [n for n in names if n not in weights]
        if missing:
            raise ValueError(f"update_weights: the source lacks {len(missing)} weights of the policy, e.g. {missing[:5]}")
        tensors = [weights[n] for n in names]
        self._policy.update_weights_list(tensors, int(version))
        if isinstance(source, nn.Module):
            self._cached_source, self._cached_tensors = source, tensors

    def warmup(self, obs: Dict[str, Tensor], rnn_states: Tensor, iterations: int = 3) -> None:
        """Run a few batches so TorchScript's profiling executor has optimized the graph."""
        self._policy.warmup(obs, rnn_states, iterations)

    def benchmark(self, obs: Dict[str, Tensor], rnn_states: Tensor, iterations: int) -> float:
        """Mean microseconds per forward, measured in a C++ loop."""
        return float(self._policy.benchmark(obs, rnn_states, iterations))


class PythonPolicy:
    """Eager PyTorch inference (``--inference_backend=python``): works for any model, slower."""

    backend = "python"

    def __init__(self, actor_critic: ActorCritic, obs_space: ObsSpace, device: Union[str, torch.device] = "cpu"):
        self.device = torch.device(device)
        model = copy.deepcopy(actor_critic).eval().to(self.device)
        for param in model.parameters():
            param.requires_grad_(False)
        self._module = make_inference_module(model, obs_space)
        self._version = 0
        # Forward and update are serialized: Python threads interleave anyway under the GIL.
        self._lock = threading.Lock()

    @property
    def version(self) -> int:
        """Policy version of the current weights."""
        return self._version

    def forward(
        self, obs: Dict[str, Tensor], rnn_states: Tensor, deterministic: bool = False
    ) -> Tuple[Dict[str, Tensor], int]:
        """One batch through the eager model."""
        obs = {k: v.to(self.device) for k, v in obs.items()}
        with self._lock, torch.no_grad():
            outputs = self._module(obs, rnn_states.to(self.device), deterministic)
            return dict(outputs), self._version

    def update_weights(self, source: WeightsSource, version: int) -> None:
        """Copy every weight of ``source`` in."""
        weights = model_weights(source)
        own = model_weights(self._module.actor_critic)
        missing = [n for n in own if n not in weights]
        if missing:
            raise ValueError(f"update_weights: the source lacks {len(missing)} weights of the policy, e.g. {missing[:5]}")
        with self._lock, torch.no_grad():
            for name, tensor in own.items():
                tensor.copy_(weights[name])
            self._version = int(version)


InferencePolicyBackend = Union[NativePolicy, PythonPolicy]


def make_inference_policy(
    actor_critic: ActorCritic,
    obs_space: ObsSpace,
    rnn_state_size: int,
    backend: str = "auto",
    device: Union[str, torch.device] = "cpu",
    verify: bool = True,
) -> InferencePolicyBackend:
    """The inference policy for ``actor_critic`` on ``backend`` (``--inference_backend``)."""
    if backend == "auto":
        try:
            return make_inference_policy(actor_critic, obs_space, rnn_state_size, AUTO_BACKEND_CHAIN[0], device, verify)
        except (ModelCompileError, ModelVerificationError) as exc:
            log.warning("%s", eager_fallback_message(exc))
            backend = "python"
    if backend == "torchscript":
        compiled, _ = compile_inference_module(actor_critic, obs_space, rnn_state_size, verify=verify)
        policy = NativePolicy(compiled, device)
        policy.update_weights(actor_critic, 0)
        return policy
    if backend == "python":
        return PythonPolicy(actor_critic, obs_space, device)
    problem = inference_backend_problem(backend)
    raise (NotImplementedError if backend in PLANNED_INFERENCE_BACKENDS else ValueError)(problem)


def eager_fallback_message(exc: Exception) -> str:
    """The one line ``auto`` logs when it falls back to eager inference: what failed, where, and the cost."""
    if isinstance(exc, ModelCompileError):
        where = f" at {exc.location}" if exc.location else ""
        reason = (
            f"TorchScript cannot compile component '{exc.component_name}' ({exc.component_class}){where}: "
            f"{exc.construct}"
        )
    else:
        first_problem = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        reason = f"the TorchScript-compiled model does not reproduce the eager one ({first_problem})"
    return (
        f"Inference: {reason}. Falling back to eager PyTorch inference (--inference_backend=python), "
        f"{EAGER_INFERENCE_COST}. --inference_backend=torchscript stops with the full report instead."
    )
