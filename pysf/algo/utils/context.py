"""Process-global registries: envs and the model factory (Sample Factory's ``sample_factory.algo.utils.context``).

Register envs and model components before ``run_rl``; worker processes receive a copy of this context,
so registered functions and classes must be importable (defined at module level).
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

from pysf.model.model_factory import ModelFactory


class SampleFactoryContext:
    """The env registry (name -> make_env_func) and the model factory."""

    def __init__(self) -> None:
        self.env_registry: Dict[str, Callable] = dict()
        self.model_factory = ModelFactory()


_GLOBAL_CONTEXT: Optional[SampleFactoryContext] = None


def sf_global_context() -> SampleFactoryContext:
    """The process-global context (created on first use)."""
    global _GLOBAL_CONTEXT
    if _GLOBAL_CONTEXT is None:
        _GLOBAL_CONTEXT = SampleFactoryContext()
    return _GLOBAL_CONTEXT


def set_global_context(ctx: SampleFactoryContext) -> None:
    """Install ``ctx`` (worker processes install the parent's context)."""
    global _GLOBAL_CONTEXT
    _GLOBAL_CONTEXT = ctx


def reset_global_context() -> None:
    """Forget every registration (tests)."""
    global _GLOBAL_CONTEXT
    _GLOBAL_CONTEXT = SampleFactoryContext()


def global_env_registry() -> Dict[str, Callable]:
    """Registered env factories by name."""
    return sf_global_context().env_registry


def global_model_factory() -> ModelFactory:
    """The model factory used to build actor-critics."""
    return sf_global_context().model_factory
