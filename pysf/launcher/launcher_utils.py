"""Helpers for writing experiment descriptions (Sample Factory's ``sample_factory.launcher.launcher_utils``)."""

from __future__ import annotations

import random
from typing import List

# Seeds are drawn from the 7-digit numbers, as Sample Factory does, so that they read alike in experiment names.
_SEED_LOW, _SEED_HIGH = 1_000_000, 9_999_999


def seeds(num_seeds: int) -> List[int]:
    """``num_seeds`` random seeds (7-digit integers), e.g. ``ParamGrid([("seed", seeds(4)), ...])``.

    Drawn with Python's ``random`` module: call ``random.seed(...)`` first for a reproducible list.
    """
    if num_seeds < 0:
        raise ValueError(f"seeds(num_seeds): num_seeds must be >= 0, got {num_seeds}")
    return [random.randrange(_SEED_LOW, _SEED_HIGH) for _ in range(num_seeds)]
