"""PettingZoo parallel envs as multi-agent envs (pysf.envs.pettingzoo_env), alone and through the sampler."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from helpers import pettingzoo_test_envs  # noqa: E402
from helpers.pettingzoo_test_envs import RelayEnv  # noqa: E402
from helpers.sampling import collect_from_every_env, small_cfg  # noqa: E402
from pysf.envs.create_env import create_env  # noqa: E402
from pysf.envs.env_utils import register_env  # noqa: E402
from pysf.envs.pettingzoo_env import PettingZooParallelEnv  # noqa: E402


@pytest.fixture
def relay(fresh_context):
    register_env("relay", pettingzoo_test_envs.make_relay_env)
    env = create_env("relay")
    assert isinstance(env, PettingZooParallelEnv)
    return env


def test_agents_are_possible_agents_in_order_with_one_agents_spaces(relay):
    assert relay.num_agents == 3 and relay.is_multiagent
    assert relay.observation_space.shape == (3,) and relay.action_space.n == 2
    obs, infos = relay.reset(seed=7)
    assert [int(o[1]) for o in obs] == [0, 1, 2] and all(info["seed"] == 7 for info in infos)


def test_a_finished_agent_is_inactive_until_the_env_resets_itself(relay):
    relay.reset(seed=0)
    raw = relay.env
    for step in range(1, RelayEnv.EPISODE_STEPS + 1):
        obs, rewards, terminated, truncated, infos = relay.step([1, 0, 1])
        if step < RelayEnv.B_STEPS:
            assert rewards == [1.0, 2.0, 3.0] and not any(terminated) and all("is_active" not in i for i in infos)
        elif step == RelayEnv.B_STEPS:  # b ends: it is trained on this step, not on the following ones
            assert terminated == [False, True, False] and infos[1]["is_active"] is False and infos[1]["step"] == step
        elif step < RelayEnv.EPISODE_STEPS:
            assert rewards == [1.0, 0.0, 3.0] and terminated == [False, False, False]
            assert infos[1] == {"is_active": False} and "is_active" not in infos[0]
            assert int(obs[1][2]) == RelayEnv.B_STEPS, "b keeps its last observation"
            assert "b" not in raw.received[-1], "no action for an agent that is gone"
        else:  # a and c are truncated: the env has reset itself, everyone is active again
            assert truncated == [True, False, True] and rewards == [1.0, 0.0, 3.0]
            assert [int(o[2]) for o in obs] == [0, 0, 0], "the next episode's first observations"
            assert all("is_active" not in info and "reset_info" in info for info in infos)
    assert raw.received[0] == {"a": 1, "b": 0, "c": 1}


def test_different_spaces_per_agent_are_refused_with_what_to_do():
    with pytest.raises(ValueError, match="pad_action_space"):
        PettingZooParallelEnv(pettingzoo_test_envs.MixedSpacesEnv())


def test_the_sampler_gives_each_agent_a_row_and_masks_the_finished_ones(fresh_context):
    from pysf.algo.sampling.sync_sampling_api import SyncSamplingAPI

    register_env("relay", pettingzoo_test_envs.make_relay_env)
    cfg = small_cfg("relay", decorrelate_envs_on_one_worker=False)
    with SyncSamplingAPI(cfg) as sampling:
        assert sampling.env_info.num_agents == 3
        batches = collect_from_every_env(sampling, cfg.num_workers * cfg.num_envs_per_worker)
    rows = 0
    for batch in batches:
        obs, policy_ids = batch["obs"]["obs"].numpy(), batch["policy_id"].numpy()
        for row in range(obs.shape[0]):
            agent, steps = int(obs[row, 0, 1]), obs[row, :-1, 2].astype(int)
            assert np.all(obs[row, :, 1] == agent), "a row is one agent's"
            # b's steps after its termination (episode steps B_STEPS .. EPISODE_STEPS - 1) belong to no policy
            masked = (agent == 1) & (steps >= RelayEnv.B_STEPS)
            assert np.array_equal(policy_ids[row] == -1, masked), (agent, steps, policy_ids[row])
            rows += 1
    assert rows >= 3 * cfg.num_workers * cfg.num_envs_per_worker


def test_a_real_pettingzoo_env_steps_through_create_env(fresh_context):
    pytest.importorskip("pygame")
    from pettingzoo.butterfly import cooperative_pong_v6

    register_env("coop_pong", lambda name, cfg, env_config, render_mode: cooperative_pong_v6.parallel_env())
    env = create_env("coop_pong")
    obs, _ = env.reset(seed=0)
    assert env.num_agents == 2 and obs[0].shape == env.observation_space.shape
    for _ in range(5):
        obs, rewards, terminated, truncated, infos = env.step([env.action_space.sample() for _ in range(2)])
        assert len(obs) == len(rewards) == len(terminated) == len(truncated) == len(infos) == 2
    env.close()


def test_a_turn_based_game_applies_the_movers_action_and_masks_the_waiting_agent(fresh_context):
    """connect_four_v3 through create_env: both seats act at every step, only the mover's column is played; the
    waiting seat's mask allows action 0 only; a game's result reaches both seats at its last step (zero-sum), both
    are done together, and the env resets itself."""
    from pettingzoo.classic import connect_four_v3

    from pysf.envs.pettingzoo_env import PettingZooAECEnv

    register_env("pz_connect_four", lambda name, cfg, env_config, render_mode: connect_four_v3.env())
    env = create_env("pz_connect_four")
    assert isinstance(env, PettingZooAECEnv) and env.num_agents == 2 and env.is_multiagent
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    games, steps, moves_this_game = 0, 0, 0
    while games < 20:
        mover = env.agent_names.index(env.env.agent_selection)
        waiting = obs[1 - mover]["action_mask"]
        assert waiting.tolist() == [1, 0, 0, 0, 0, 0, 0]
        actions = [0, 0]
        actions[mover] = int(rng.choice(np.flatnonzero(obs[mover]["action_mask"])))
        stones_before = int(obs[0]["observation"].sum())
        obs, rewards, terminated, truncated, infos = env.step(actions)
        steps += 1
        moves_this_game += 1
        if terminated[0] or terminated[1]:
            assert terminated == [True, True] and truncated == [False, False]
            assert rewards[0] == -rewards[1] and abs(rewards[0]) in (0.0, 1.0)
            assert int(obs[0]["observation"].sum()) == 0 and all("reset_info" in info for info in infos)
            assert moves_this_game >= 7
            games, moves_this_game = games + 1, 0
        else:
            assert rewards == [0.0, 0.0] and int(obs[0]["observation"].sum()) == stones_before + 1  # one stone
    assert steps < 20 * 43
