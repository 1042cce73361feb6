"""Small shared constants (Sample Factory's ``sample_factory.algo.utils.misc``)."""

from __future__ import annotations

EPS = 1e-8


class ExperimentStatus:
    """Exit status of ``run_rl`` / ``enjoy``."""

    SUCCESS, FAILURE, INTERRUPTED = range(3)
