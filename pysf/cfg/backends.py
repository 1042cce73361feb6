"""The values of pysf's own backend flags, ``--inference_backend`` and ``--env_backend``: one list each, read by
the parser (choices), the configuration checks and the code that runs the backends."""

from __future__ import annotations

from typing import Optional, Tuple

INFERENCE_BACKENDS: Tuple[str, ...] = ("auto", "torchscript", "python")
# Accepted by the parser, stopped before training with a not-yet message.
PLANNED_INFERENCE_BACKENDS: Tuple[str, ...] = ("aoti",)
ENV_BACKENDS: Tuple[str, ...] = ("auto", "native", "gym")


def inference_backend_problem(backend: str) -> Optional[str]:
    """Why pysf cannot run ``--inference_backend=backend``, or None."""
    if backend in PLANNED_INFERENCE_BACKENDS:
        return (
            f"--inference_backend={backend} (AOTInductor) is not available in pysf yet. Use --inference_backend=auto "
            f"(the default: compiled with TorchScript and run in C++ when the model compiles, eager otherwise), "
            f"--inference_backend=torchscript or --inference_backend=python (eager PyTorch)."
        )
    if backend not in INFERENCE_BACKENDS:
        return f"Unknown --inference_backend={backend!r}: use one of {', '.join(INFERENCE_BACKENDS)} (auto is the default)."
    return None


def env_backend_problem(backend: str) -> Optional[str]:
    """Why ``--env_backend=backend`` is not a backend, or None."""
    if backend not in ENV_BACKENDS:
        return f"Unknown --env_backend={backend!r}: use one of {', '.join(ENV_BACKENDS)} (auto is the default)."
    return None
