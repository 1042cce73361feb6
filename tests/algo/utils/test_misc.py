"""pysf.algo.utils.misc: Sample Factory's constants and memory_stats."""

from __future__ import annotations

import psutil
import pytest
import torch

from pysf.algo.utils import misc


def test_constants_have_sample_factory_values():
    assert misc.EPS == 1e-8
    assert misc.EPISODIC == "episodic"
    assert misc.LEARNER_ENV_STEPS == "learner_env_steps"
    assert misc.TRAIN_STATS == "train"
    assert misc.TIMING_STATS == "timing"
    assert misc.STATS_KEY == "stats"
    assert misc.SAMPLES_COLLECTED == "samples_collected"
    assert misc.POLICY_ID_KEY == "policy_id"
    assert misc.MAGIC_FLOAT == -4242.42 and misc.MAGIC_INT == 43
    assert (misc.ExperimentStatus.SUCCESS, misc.ExperimentStatus.FAILURE, misc.ExperimentStatus.INTERRUPTED) == (0, 1, 2)


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_memory_stats_cpu(device):
    stats = misc.memory_stats("learner", device)
    assert set(stats) == {"memory_learner"}
    assert stats["memory_learner"] == pytest.approx(psutil.Process().memory_info().rss / 2**20, rel=0.2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_memory_stats_cuda():
    stats = misc.memory_stats("inference", torch.device("cuda", 0))
    assert set(stats) == {"memory_inference", "gpu_mem_inference", "gpu_cache_inference"}
    assert stats["gpu_cache_inference"] >= stats["gpu_mem_inference"] >= 0
