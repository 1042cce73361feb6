"""pysf.algo.utils.env_info: EnvInfo in this process and in a spawned one (the same), SF's fields (reward shaping,
num_agents), check_env_info, and --use_env_info_cache (hit; stale, foreign or corrupt entries rebuilt)."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import pickle
import sys

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from pysf.algo.utils import env_info as env_info_module
from pysf.algo.utils.context import reset_global_context
from pysf.algo.utils.env_info import (
    EnvInfo,
    check_env_info,
    env_info_cache_filename,
    extract_env_info,
    obtain_env_info,
    obtain_env_info_in_a_separate_process,
)
from pysf.algo.utils.make_env import make_env_func_batched, make_env_func_non_batched
from pysf.cfg.arguments import default_cfg
from pysf.envs.create_env import create_env
from pysf.envs.env_utils import register_env

from helpers import env_info_test_envs  # spawned processes import it too (tests/ is on their sys.path)

TWO_AGENTS = "shaped_two_agent_env"
DICT_OBS = "dict_obs_env"


@pytest.fixture(autouse=True)
def fresh_context(monkeypatch, tmp_path):
    reset_global_context()
    register_env(TWO_AGENTS, env_info_test_envs.make_shaped_two_agent_env)
    register_env(DICT_OBS, env_info_test_envs.make_dict_obs_env)
    env_info_test_envs.factory_calls["count"] = 0
    # the cache lives in a scratch folder of this test, not in the user's /tmp/sf2_<user>
    cache_dir = tmp_path / "env_info_cache"
    cache_dir.mkdir()
    monkeypatch.setattr(env_info_module, "project_tmp_dir", lambda mkdir=True: str(cache_dir))
    monkeypatch.delenv(env_info_test_envs.FAIL_ENV_VAR, raising=False)
    yield
    reset_global_context()


def make_cfg(env: str, **overrides):
    cfg = default_cfg(env=env)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def calls() -> int:
    return env_info_test_envs.factory_calls["count"]


# --------------------------------------------------------------------------------------------------------------
# In this process and in a spawned one
# --------------------------------------------------------------------------------------------------------------


def test_native_env_info_is_the_same_in_a_separate_process():
    cfg = make_cfg("CartPole-v1")
    in_process = obtain_env_info(cfg)
    assert in_process.native
    assert in_process.obs_space == spaces.Dict(obs=gymnasium.make("CartPole-v1").observation_space)
    assert in_process.action_space == spaces.Discrete(2)
    assert (in_process.max_episode_steps, in_process.reward_threshold) == (500, 475.0)
    assert (in_process.num_agents, in_process.is_multiagent, in_process.obs_is_dict) == (1, False, False)
    assert in_process.env_info_protocol_version == env_info_module.ENV_INFO_PROTOCOL_VERSION

    assert obtain_env_info_in_a_separate_process(cfg) == in_process

    # the native env describes the same env as gymnasium's: only `native` differs
    gym_info = obtain_env_info(make_cfg("CartPole-v1", env_backend="gym"))
    assert not gym_info.native
    assert dataclasses.replace(gym_info, native=True) == in_process


def test_registered_env_info_is_the_same_in_a_separate_process():
    cfg = make_cfg(TWO_AGENTS, env_frameskip=4, env_gpu_actions=True, env_gpu_observations=False)
    in_process = obtain_env_info(cfg)
    assert calls() == 1

    assert in_process.obs_space == spaces.Dict(obs=spaces.Box(-1.0, 1.0, (5,), dtype=np.float32))
    assert (in_process.num_agents, in_process.is_multiagent, in_process.obs_is_dict) == (2, True, False)
    assert in_process.reward_shaping_scheme == dict(goal=1.0, time=-0.1)
    assert (in_process.action_splits, in_process.all_discrete) == ([1, 2], False)
    assert (in_process.frameskip, in_process.gpu_actions, in_process.gpu_observations) == (4, True, False)
    assert not in_process.native and in_process.max_episode_steps is None

    separate = obtain_env_info_in_a_separate_process(cfg)
    assert separate == in_process
    assert calls() == 1, "the factory ran in the other process"


def test_a_failure_in_the_separate_process_is_raised_with_its_traceback(monkeypatch):
    monkeypatch.setenv(env_info_test_envs.FAIL_ENV_VAR, "1")
    with pytest.raises(RuntimeError, match="(?s)separate process.*fails on purpose.*Traceback"):
        obtain_env_info_in_a_separate_process(make_cfg(DICT_OBS))


def test_extract_env_info_is_the_same_for_the_raw_and_the_wrapped_env():
    for name, expected_dict in ((DICT_OBS, True), (TWO_AGENTS, False), ("MountainCar-v0", False)):
        cfg = make_cfg(name)
        raw = create_env(name, cfg)
        envs = (raw, make_env_func_batched(cfg, None), make_env_func_non_batched(cfg, None))
        infos = [extract_env_info(env, cfg) for env in envs]
        assert infos[0] == infos[1] == infos[2], name
        assert infos[0].obs_is_dict is expected_dict
        assert obtain_env_info(make_cfg(name, env_backend="gym")) == infos[0]
    dict_info = extract_env_info(create_env(DICT_OBS, make_cfg(DICT_OBS)), make_cfg(DICT_OBS))
    assert set(dict_info.obs_space.spaces) == {"pos", "img"} and dict_info.num_agents == 1
    assert not dict_info.is_multiagent and dict_info.reward_shaping_scheme is None


def test_check_env_info_accepts_the_same_env_and_rejects_a_changed_one():
    cfg = make_cfg(DICT_OBS, use_env_info_cache=True)
    env_info = obtain_env_info(cfg)
    cache_file = env_info_cache_filename(cfg)
    assert os.path.isfile(cache_file)

    check_env_info(make_env_func_batched(cfg, None), env_info, cfg)
    check_env_info(create_env(DICT_OBS, cfg), env_info, cfg)
    native = obtain_env_info(make_cfg("CartPole-v1"))
    check_env_info(create_env("CartPole-v1", make_cfg("CartPole-v1")), native, make_cfg("CartPole-v1"))

    changed = dataclasses.replace(env_info, action_space=spaces.Discrete(5))
    with pytest.raises(ValueError, match="action_space"):
        check_env_info(make_env_func_batched(cfg, None), changed, cfg)
    assert not os.path.exists(cache_file), "a mismatch deletes the cache entry"


# --------------------------------------------------------------------------------------------------------------
# --use_env_info_cache
# --------------------------------------------------------------------------------------------------------------


def test_cache_is_used_only_with_the_flag():
    cfg = make_cfg(DICT_OBS)
    obtain_env_info(cfg)
    obtain_env_info(cfg)
    assert calls() == 2
    assert not os.path.exists(env_info_cache_filename(cfg))

    cfg.use_env_info_cache = True
    first = obtain_env_info(cfg)
    assert calls() == 3 and os.path.isfile(env_info_cache_filename(cfg))
    second = obtain_env_info(cfg)
    assert calls() == 3, "cache hit: no temporary env"
    assert second == first

    # trainer flags do not shape the env: still a hit, also for the separate-process variant (no process started,
    # which the failing factory would reveal)
    cfg.learning_rate = 0.5
    cfg.num_workers = 7
    os.environ[env_info_test_envs.FAIL_ENV_VAR] = "1"
    try:
        assert obtain_env_info(cfg) == first
        assert obtain_env_info_in_a_separate_process(cfg) == first
    finally:
        del os.environ[env_info_test_envs.FAIL_ENV_VAR]
    assert calls() == 3


def test_cache_entry_made_for_other_env_side_flags_is_rebuilt(caplog):
    cfg = make_cfg(TWO_AGENTS, use_env_info_cache=True)
    obtain_env_info(cfg)
    cfg.env_frameskip = 4
    with caplog.at_level(logging.INFO, logger="rl"):
        rebuilt = obtain_env_info(cfg)
    assert calls() == 2 and rebuilt.frameskip == 4
    assert any("other inputs" in r.getMessage() and "env_frameskip" in r.getMessage() for r in caplog.records)
    assert obtain_env_info(cfg) == rebuilt and calls() == 2, "the rebuilt entry is used next time"

    cfg.custom_episode_len = 99  # a flag a script added (not one of the trainer's): it may shape the env
    obtain_env_info(cfg)
    assert calls() == 3


def test_cache_entry_made_for_another_factory_is_rebuilt():
    cfg = make_cfg(DICT_OBS, use_env_info_cache=True)
    obtain_env_info(cfg)
    register_env(DICT_OBS, env_info_test_envs.make_shaped_two_agent_env)
    info = obtain_env_info(cfg)
    assert calls() == 2 and info.num_agents == 2


def test_cache_entry_is_rebuilt_when_the_factory_module_changes(tmp_path, monkeypatch):
    module_dir = tmp_path / "factory_module"
    module_dir.mkdir()
    source = module_dir / "edited_env_factory.py"
    source.write_text(
        "from helpers.env_info_test_envs import make_dict_obs_env\n"
        "def make_env(full_env_name, cfg=None, env_config=None, render_mode=None):\n"
        "    return make_dict_obs_env(full_env_name, cfg, env_config, render_mode)\n"
    )
    monkeypatch.syspath_prepend(str(module_dir))
    module = importlib.import_module("edited_env_factory")
    try:
        register_env("edited_env", module.make_env)
        cfg = make_cfg("edited_env", use_env_info_cache=True)
        obtain_env_info(cfg)
        obtain_env_info(cfg)
        assert calls() == 1
        source.write_text(source.read_text() + "# edited\n")  # the env's code changed
        obtain_env_info(cfg)
        assert calls() == 2
    finally:
        sys.modules.pop("edited_env_factory", None)


def test_cache_entry_of_another_protocol_is_rebuilt(monkeypatch):
    cfg = make_cfg(DICT_OBS, use_env_info_cache=True)
    obtain_env_info(cfg)
    monkeypatch.setattr(env_info_module, "ENV_INFO_PROTOCOL_VERSION", env_info_module.ENV_INFO_PROTOCOL_VERSION + 1)
    info = obtain_env_info(cfg)
    assert calls() == 2 and info.env_info_protocol_version == env_info_module.ENV_INFO_PROTOCOL_VERSION


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x80\x04 definitely not a pickle", "cannot be read"),
        (b"", "cannot be read"),
        (pickle.dumps({"some": "dict"}), "not a pysf env info entry"),
        # an EnvInfo pickled bare, as Sample Factory stores its entries
        (pickle.dumps(EnvInfo(spaces.Dict(obs=spaces.Discrete(3)), spaces.Discrete(9))), "not a pysf"),
    ],
)
def test_corrupt_or_foreign_cache_entries_are_rebuilt(content, message, caplog):
    cfg = make_cfg(DICT_OBS, use_env_info_cache=True)
    expected = obtain_env_info(cfg)
    with open(env_info_cache_filename(cfg), "wb") as fobj:
        fobj.write(content)
    with caplog.at_level(logging.WARNING, logger="rl"):
        info = obtain_env_info(cfg)
    assert info == expected and calls() == 2
    assert any(message in r.getMessage() for r in caplog.records)
    assert obtain_env_info(cfg) == expected and calls() == 2, "the entry was rewritten"


def test_native_envs_do_not_use_the_cache():
    cfg = make_cfg("CartPole-v1", use_env_info_cache=True)
    assert obtain_env_info(cfg).native
    assert not os.path.exists(env_info_cache_filename(cfg))


def test_an_unwritable_cache_does_not_stop_training(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(env_info_module, "project_tmp_dir", lambda mkdir=True: str(tmp_path / "missing" / "dir"))
    cfg = make_cfg(DICT_OBS, use_env_info_cache=True)
    with caplog.at_level(logging.WARNING, logger="rl"):
        info = obtain_env_info(cfg)
    assert info.obs_is_dict
    assert any("Could not write the env info cache" in r.getMessage() for r in caplog.records)


def test_cache_file_names():
    assert os.path.basename(env_info_cache_filename(make_cfg("CartPole-v1"))) == "pysf_env_info_CartPole-v1"
    assert os.path.basename(env_info_cache_filename(make_cfg("ALE/Pong-v5"))) == "pysf_env_info_ALE_Pong-v5"
