"""TorchScript bridge: compile an actor-critic for the native core, verify it, explain failures.

``compile_inference_module`` scripts a frozen-in-eval-mode copy of the model wrapped in
``InferencePolicy``, then checks the compiled module against the eager one on random inputs. User
components need no type annotations: pysf supplies the component contracts' types to the copy
(``annotate.py``). When a component still cannot be compiled, ``ModelCompileError`` names the component,
quotes TorchScript's report (construct and line) and says what to change, or how to fall back to eager
inference; TorchScript's cached types of the failed classes are dropped, so a later compile in the same
process reports the real problem again (or succeeds once it is fixed).
"""

from __future__ import annotations

import copy
import inspect
import io
import re
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from pysf.algo.inference.annotate import (
    ANNOTATED_FILE_SUFFIX,
    forget_compiled_classes,
    original_class,
    supply_contract_annotations,
)
from pysf.algo.inference.policy_module import InferencePolicy, make_inference_module
from pysf.algo.utils.action_distributions import ACTION_MASK_KEY
from pysf.model.actor_critic import ActorCritic
from pysf.utils.typing import ObsSpace

PYTHON_BACKEND_HINT = (
    "Or run the model eagerly: --inference_backend=auto (the default) falls back to eager PyTorch inference by "
    "itself, --inference_backend=python always uses it (slower: every inference batch goes through the Python "
    "interpreter instead of the native loop)."
)

# (pattern in TorchScript's message, advice). Checked in order; every match is reported.
_FIX_HINTS: List[Tuple[str, str]] = [
    (
        r"variable number of arguments|keyword-only arguments|\*args|\*\*kwargs",
        "forward() and the methods it calls must list every argument explicitly: no *args / **kwargs.",
    ),
    (
        r"torch\.distributions|torch/distributions|Categorical|Normal\b",
        "torch.distributions does not compile; use pysf.algo.utils.action_distributions "
        "(make_distribution_head(action_space) gives sample/log_prob/entropy/kl/argmax) or the model's "
        "action_parameterization.",
    ),
    (
        r"unsupported index type 'str'|Expected a value of type 'Tensor'|"
        r"has no attribute 'items'|Tensor cannot be used as a tuple|Dict\[str, Tensor\]",
        "TorchScript assumes unannotated arguments are Tensors: annotate them, e.g. "
        "`def forward(self, obs_dict: Dict[str, Tensor]) -> Tensor` for encoders and "
        "`def forward(self, head_output: Tensor, rnn_states: Tensor) -> Tuple[Tensor, Tensor]` for cores "
        "(from typing import Dict, Tuple; from torch import Tensor).",
    ),
    (
        r"failed to convert Python type|Module '.*' has no attribute",
        "forward() may only use attributes TorchScript can type (tensors, submodules, int/float/bool/str "
        "and lists/dicts of them): read values from cfg in __init__ and store them, e.g. "
        "`self.rnn_size: int = cfg.rnn_size`, instead of using self.cfg in forward().",
    ),
    (
        r"Python builtin|Unknown builtin op|Could not get name of python class object|"
        r"Python type .* cannot be used|numpy",
        "Only torch operations compile: replace numpy / Python library calls in forward() by torch ops, or "
        "move the computation to __init__.",
    ),
    (
        r"Tried to access nonexistent attribute|Unknown type name|undefined value",
        "A name used in forward() is not visible to TorchScript: import it at module level and make sure "
        "types in annotations are importable.",
    ),
]


class ModelCompileError(RuntimeError):
    """The model (or one of its components) cannot be compiled for native inference.

    Attributes: ``component_name`` (e.g. ``"encoder"``), ``component_class``, ``torchscript_message`` (TorchScript's
    whole report), ``construct`` (its first line: what failed) and ``location`` (``file:line`` of the failing code,
    or None).
    """

    def __init__(
        self,
        message: str,
        component_name: str,
        component_class: str,
        torchscript_message: str,
        fallback_location: Optional[str] = None,
    ):
        super().__init__(message)
        self.component_name = component_name
        self.component_class = component_class
        self.torchscript_message = torchscript_message
        self.construct, self.location = summarize_torchscript_error(torchscript_message)
        # Some failures (e.g. a numpy call) come without a source frame: then point at the component's forward.
        self.location = self.location or fallback_location


_TORCHSCRIPT_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


def summarize_torchscript_error(message: str) -> Tuple[str, Optional[str]]:
    """``(what failed, "file:line" where)`` from a TorchScript error report (the first frame is the failing code)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    construct = lines[0].rstrip(":") if lines else "unknown TorchScript error"
    frame = _TORCHSCRIPT_FRAME.search(message)
    location = None
    if frame is not None:
        filename = frame.group("file").removesuffix(ANNOTATED_FILE_SUFFIX)
        location = f"{filename}:{frame.group('line')}"
    return construct, location


class ModelVerificationError(RuntimeError):
    """The compiled model's outputs differ from the eager model's on the same inputs."""


def _script(module: nn.Module) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*", category=DeprecationWarning)
        return torch.jit.script(module)


def _is_library_module(module: nn.Module) -> bool:
    name = type(module).__module__
    return name.startswith("torch.") or isinstance(module, torch.jit.ScriptModule)


def _find_failing_component(model: nn.Module) -> Optional[Tuple[str, nn.Module]]:
    """The deepest user module that does not compile on its own (children are tried before parents).

    Only names the culprit: TorchScript keeps a class that failed to compile half-registered, so a second
    attempt reports "Can't redefine method" instead of the real problem, which the caller keeps.
    """
    for name, module in reversed(list(model.named_modules())):
        if _is_library_module(module) or type(module).forward is nn.Module.forward:
            continue
        try:
            _script(module)
        except Exception:  # noqa: BLE001 - any TorchScript failure marks the culprit
            forget_compiled_classes(module)
            return name, module
    return None


def _trim(message: str, max_lines: int = 40) -> str:
    lines = message.strip().splitlines()
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"  ... ({len(lines) - max_lines} more lines)"]
    return "\n".join("    " + line for line in lines)


def _fix_hints(message: str) -> List[str]:
    hints = [advice for pattern, advice in _FIX_HINTS if re.search(pattern, message)]
    if not hints:
        hints = [
            "Make the component TorchScript-compatible: type-annotate forward() arguments and return "
            "values, use only torch operations, avoid *args/**kwargs and torch.distributions "
            "(https://pytorch.org/docs/stable/jit_language_reference.html)."
        ]
    return hints


def explain_compile_failure(model: nn.Module, exc: Exception) -> ModelCompileError:
    """Build the actionable error for a model whose scripting raised ``exc``."""
    failing = _find_failing_component(model)
    if failing is not None:
        name, module = failing
        component_name = name.removeprefix("actor_critic.") or "actor_critic"
    else:
        component_name = "actor_critic"
        module = model.actor_critic if isinstance(model, InferencePolicy) else model
    cls = original_class(type(module))
    ts_message = str(exc)
    hints = "\n".join(f"  - {hint}" for hint in _fix_hints(ts_message))
    message = (
        f"pysf cannot compile the model with TorchScript for native inference: component "
        f"'{component_name}' ({cls.__qualname__}, from module {cls.__module__}) is not TorchScript-compatible.\n"
        f"TorchScript reports:\n{_trim(ts_message)}\n"
        f"How to fix it:\n{hints}\n"
        f"{PYTHON_BACKEND_HINT}"
    )
    return ModelCompileError(message, component_name, cls.__qualname__, ts_message, _forward_location(cls))


def _forward_location(cls: type) -> Optional[str]:
    """``file:line`` of ``cls.forward``, or None when it has no source."""
    try:
        forward = cls.forward
        return f"{inspect.getsourcefile(forward)}:{inspect.getsourcelines(forward)[1]}"
    except (AttributeError, OSError, TypeError):
        return None


# ---- verification -------------------------------------------------------------------------------


def random_observations(obs_space: ObsSpace, batch_size: int, generator: np.random.Generator) -> Dict[str, Tensor]:
    """A batch of random observations drawn from ``obs_space`` (an all-allowed action mask if present)."""
    batch: Dict[str, Tensor] = {}
    for key, space in obs_space.spaces.items():
        if key == ACTION_MASK_KEY:
            batch[key] = torch.ones((batch_size,) + tuple(space.shape), dtype=torch.float32)
            continue
        if isinstance(space, spaces.Box) and np.issubdtype(space.dtype, np.floating):
            low = np.where(np.isfinite(space.low), space.low, -3.0)
            high = np.where(np.isfinite(space.high), space.high, 3.0)
            values = generator.uniform(low, high, size=(batch_size,) + tuple(space.shape))
            batch[key] = torch.as_tensor(values.astype(space.dtype))
        else:
            space.seed(int(generator.integers(2**31)))
            batch[key] = torch.as_tensor(np.stack([np.asarray(space.sample()) for _ in range(batch_size)]))
    return batch


def _compare(name: str, compiled: Tensor, eager: Tensor, atol: float) -> Optional[str]:
    if compiled.shape != eager.shape or compiled.dtype != eager.dtype:
        return f"{name}: compiled {tuple(compiled.shape)} {compiled.dtype} vs eager {tuple(eager.shape)} {eager.dtype}"
    if compiled.is_floating_point():
        if not torch.allclose(compiled, eager, atol=atol, rtol=1e-4):
            return f"{name}: max abs difference {(compiled - eager).abs().max().item():.3g}"
    elif not torch.equal(compiled, eager):
        return f"{name}: {int((compiled != eager).sum())} entries differ"
    return None


def verify_compiled(
    compiled: torch.jit.ScriptModule,
    eager: InferencePolicy,
    obs_space: ObsSpace,
    rnn_state_size: int,
    batch_size: int = 4,
    seed: int = 0,
    atol: float = 1e-4,
) -> None:
    """Run compiled and eager modules on the same random batch (deterministic and same-seed sampling)."""
    rng = np.random.default_rng(seed)
    obs = random_observations(obs_space, batch_size, rng)
    rnn_states = torch.as_tensor(rng.normal(0.0, 0.5, size=(batch_size, rnn_state_size)).astype(np.float32))
    problems: List[str] = []
    for deterministic in (True, False):
        with torch.no_grad():
            torch.manual_seed(seed)
            expected = eager({k: v.clone() for k, v in obs.items()}, rnn_states.clone(), deterministic)
            torch.manual_seed(seed)
            actual = compiled({k: v.clone() for k, v in obs.items()}, rnn_states.clone(), deterministic)
        missing = [k for k in expected.keys() if k not in actual]
        problems += [f"output '{k}' missing from the compiled model" for k in missing]
        for key in expected.keys():
            if key in actual:
                problem = _compare(key, actual[key], expected[key], atol)
                if problem:
                    mode = "deterministic" if deterministic else "sampling"
                    problems.append(f"[{mode}] {problem}")
    if problems:
        raise ModelVerificationError(
            "The TorchScript-compiled model does not reproduce the eager model on the same inputs:\n  "
            + "\n  ".join(problems)
            + "\nThis usually means forward() depends on Python state TorchScript froze at compile time "
            "(e.g. a Python flag or global). " + PYTHON_BACKEND_HINT
        )


def compile_inference_module(
    actor_critic: ActorCritic, obs_space: ObsSpace, rnn_state_size: int, verify: bool = True
) -> Tuple[torch.jit.ScriptModule, InferencePolicy]:
    """Script an eval-mode copy of ``actor_critic``; returns ``(compiled, eager_wrapper)``.

    The learner's model is not modified: its copy is wrapped in ``InferencePolicy`` and compiled. Raises
    ``ModelCompileError`` (actionable) when scripting fails and ``ModelVerificationError`` when the
    compiled module disagrees with the eager one.
    """
    inference_copy = copy.deepcopy(actor_critic).eval()
    for param in inference_copy.parameters():
        param.requires_grad_(False)
    eager = make_inference_module(inference_copy, obs_space)
    supply_contract_annotations(eager)
    try:
        compiled = _script(eager)
    except Exception as exc:  # noqa: BLE001 - TorchScript raises several exception types
        forget_compiled_classes(eager)
        error = explain_compile_failure(eager, exc)
        forget_compiled_classes(eager)
        raise error from None
    compiled.eval()
    if verify:
        verify_compiled(compiled, eager, obs_space, rnn_state_size)
    return compiled, eager


def serialize_script_module(module: torch.jit.ScriptModule) -> bytes:
    """The archive bytes ``torch.jit.save`` writes (what the C++ policy loads)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*", category=DeprecationWarning)
        torch.jit.save(module, buffer)
    return buffer.getvalue()

