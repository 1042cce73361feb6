"""pysf: Sample Factory's asynchronous PPO with a native C++/LibTorch rollout core.

Code written for Sample Factory runs with ``sample_factory`` replaced by ``pysf``; users import from the
submodules (``pysf.model.encoder``, ``pysf.algo.utils.context``, ...), as in Sample Factory.
"""

from __future__ import annotations

import torch

__version__ = "0.1.0"


def _base_version(version: str) -> str:
    """``2.13.0+cpu`` -> ``2.13.0``: the local build tag does not change the C++ ABI."""
    return version.split("+", 1)[0]


def check_torch_version(built_against: str, installed: str) -> None:
    """Raise ImportError when the installed torch differs from the one pysf._C was compiled against."""
    if _base_version(built_against) != _base_version(installed):
        raise ImportError(
            f"pysf was compiled against torch {built_against} but torch {installed} is installed. "
            f"pysf's C++ extension is tied to torch's C++ ABI, so the versions must match: either "
            f"`pip install torch=={_base_version(built_against)}`, or rebuild pysf against this torch "
            f"(`pip install --no-build-isolation --force-reinstall --no-deps <pysf source>`)."
        )


try:
    from pysf import _build_info
except ImportError as exc:  # a source tree that was never built
    raise ImportError(
        "pysf's native extension is not built. From the source tree run `make test` or "
        "`bash scripts/setup_env.sh` (they create .venv and build it), or `pip install` a pysf wheel."
    ) from exc

check_torch_version(_build_info.TORCH_VERSION, torch.__version__)

# Loading the native core registers the torch.ops.pysf operators (GAE, V-trace: csrc/ops/registration.cpp).
from pysf import _C  # noqa: E402,F401
