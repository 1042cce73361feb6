"""Sample Factory's sampling-only API the way its example script uses it (sf_examples/sampler/
use_simplified_sampling_api.py): env info from a separate process, SyncSamplingAPI(cfg, env_info), start,
count samples with samples_per_trajectory, stop."""

from __future__ import annotations

import pytest
import torch

from pysf.algo.sampling.simplified_sampling_api import SyncSamplingAPI as SyncSamplingAPI_2_1_1
from pysf.algo.sampling.sync_sampling_api import SyncSamplingAPI
from pysf.algo.utils.env_info import obtain_env_info_in_a_separate_process
from pysf.algo.utils.misc import ExperimentStatus
from pysf.algo.utils.rl_utils import samples_per_trajectory
from pysf.cfg.arguments import parse_full_cfg, parse_sf_args
from pysf.model.actor_critic import create_actor_critic

ARGV = ["--env=CartPole-v1", "--num_workers=2", "--num_envs_per_worker=4", "--use_rnn=False", "--rollout=16"]


def parse(*extra: str):
    parser, _ = parse_sf_args([*ARGV, *extra])
    return parse_full_cfg(parser, [*ARGV, *extra])


@pytest.mark.parametrize("env_backend", ["native", "gym"])
def test_generate_trajectories_like_sample_factorys_example(env_backend):
    cfg = parse(f"--env_backend={env_backend}")
    env_info = obtain_env_info_in_a_separate_process(cfg)
    sampler = SyncSamplingAPI(cfg, env_info)
    sampler.start()
    sampled = 0
    while sampled < 2000:
        trajectory = sampler.get_trajectories_sync()
        assert trajectory is not None
        assert trajectory["rewards"].shape[1] == 16 and trajectory["obs"]["obs"].shape[1:] == (17, 4)
        sampled += samples_per_trajectory(trajectory)
    assert sampler.stop() == ExperimentStatus.SUCCESS
    assert sampler.get_trajectories_sync() is None  # stopped: no more trajectories
    assert SyncSamplingAPI_2_1_1 is SyncSamplingAPI


def test_start_with_init_model_data_samples_with_those_weights():
    cfg = parse("--env_backend=native")
    env_info = obtain_env_info_in_a_separate_process(cfg)
    trained = create_actor_critic(cfg, env_info.obs_space, env_info.action_space)
    with torch.no_grad():  # a policy that always picks action 1
        trained.action_parameterization.distribution_linear.weight.zero_()
        trained.action_parameterization.distribution_linear.bias.copy_(torch.tensor([-50.0, 50.0]))
    sampler = SyncSamplingAPI(cfg, env_info)
    sampler.start({0: (0, trained.state_dict(), "cpu", 7)})
    try:
        trajectory = sampler.get_trajectories_sync()
        assert bool((trajectory["actions"] == 1).all())
        assert bool((trajectory["policy_version"] == 7).all())
    finally:
        sampler.stop()


def test_sample_factorys_internal_arguments_are_refused():
    cfg = parse("--env_backend=native")
    with pytest.raises(NotImplementedError, match="pysf's sampler owns its buffers"):
        SyncSamplingAPI(cfg, None, buffer_mgr=object())
