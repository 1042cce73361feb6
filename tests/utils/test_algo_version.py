"""pysf.utils.algo_version.ALGO_VERSION: an integer, usable as Sample Factory's launch scripts use theirs."""

from __future__ import annotations

import re

from pysf.utils.algo_version import ALGO_VERSION


def test_algo_version_is_a_positive_int():
    assert type(ALGO_VERSION) is int and ALGO_VERSION >= 1
    # sf_examples build experiment names like these
    assert re.fullmatch(r"v\d{3,}_brax_basic_benchmark", f"v{ALGO_VERSION:03d}_brax_basic_benchmark")
    assert re.fullmatch(r"mujoco_envpool_v\d+", f"mujoco_envpool_v{ALGO_VERSION}")
