"""Small shared constants and helpers (Sample Factory's ``sample_factory.algo.utils.misc``)."""

from __future__ import annotations

from typing import Any, Dict, Union

from pysf.utils.utils import memory_consumption_mb

__all__ = [
    "EPS",
    "EPISODIC",
    "LEARNER_ENV_STEPS",
    "TRAIN_STATS",
    "TIMING_STATS",
    "STATS_KEY",
    "SAMPLES_COLLECTED",
    "POLICY_ID_KEY",
    "MAGIC_FLOAT",
    "MAGIC_INT",
    "ExperimentStatus",
    "memory_stats",
]

EPS = 1e-8

# Keys of the report dictionaries that Sample Factory's components send to the runner (and to AlgoObserver /
# env-specific report handlers): ``report[EPISODIC]`` holds finished-episode statistics, ``report[TRAIN_STATS]``
# learner statistics, ``report[TIMING_STATS]`` profiles, ``report[STATS_KEY]`` other scalars, and so on.
EPISODIC = "episodic"
LEARNER_ENV_STEPS = "learner_env_steps"
TRAIN_STATS = "train"
TIMING_STATS = "timing"
STATS_KEY = "stats"
SAMPLES_COLLECTED = "samples_collected"
POLICY_ID_KEY = "policy_id"

# Fill values that mark buffer entries never written ("uninitialized data"); find_invalid_data() looks for them.
MAGIC_FLOAT = -4242.42
MAGIC_INT = 43


class ExperimentStatus:
    """Exit status of ``run_rl`` / ``enjoy``."""

    SUCCESS, FAILURE, INTERRUPTED = range(3)


def memory_stats(process: str, device: Union[str, Any]) -> Dict[str, float]:
    """Memory figures for the summaries of component ``process`` (e.g. ``"learner"``) on ``device``.

    Always ``memory_<process>``: this process's resident memory in MiB. On a CUDA device also
    ``gpu_mem_<process>`` and ``gpu_cache_<process>``: memory allocated by and reserved for torch tensors on that
    device, in MB (10^6 bytes, as in Sample Factory).
    """
    import torch  # only here: this module is imported by torch-free code too

    stats = {f"memory_{process}": memory_consumption_mb()}
    device = torch.device(device)
    if device.type == "cuda":
        stats[f"gpu_mem_{process}"] = torch.cuda.memory_allocated(device) / 1e6
        stats[f"gpu_cache_{process}"] = torch.cuda.memory_reserved(device) / 1e6
    return stats
