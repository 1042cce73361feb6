"""Configuration checks before training: preprocess_cfg / verify_cfg (reference section 1.2 plus pysf's data-layout
checks) and check_env_name (unknown --env with close-match suggestions)."""

from __future__ import annotations

import logging
import re
from typing import Iterator, List

import pytest
from gymnasium import spaces

from pysf.algo.utils.context import sf_global_context
from pysf.algo.utils.env_info import EnvInfo
from pysf.cfg.arguments import parse_args
from pysf.cfg.verify import auto_recurrence, check_env_name, close_matches, preprocess_cfg, verify_cfg
from pysf.envs.env_utils import register_env
from pysf.utils.attr_dict import AttrDict

ENV_INFO = EnvInfo(obs_space=spaces.Dict(obs=spaces.Box(-1.0, 1.0, (4,))), action_space=spaces.Discrete(2))
TWO_AGENTS = EnvInfo(
    obs_space=spaces.Dict(obs=spaces.Box(-1.0, 1.0, (4,))), action_space=spaces.Discrete(2), num_agents=2
)


def _native_names() -> List[str]:
    try:
        from pysf.envs.native import native_env_names

        return native_env_names()
    except Exception:  # noqa: BLE001 - the extension may be missing in a bare checkout
        return []


needs_native = pytest.mark.skipif("CartPole-v1" not in _native_names(), reason="pysf._C native envs unavailable")


def make_cfg(*flags: str):
    # --num_workers is fixed because its default is the machine's core count.
    return parse_args(["--env=CartPole-v1", "--num_workers=4", *flags])


def cfg_error(*flags: str, env_info: EnvInfo = ENV_INFO) -> str:
    with pytest.raises(ValueError) as excinfo:
        preprocess_cfg(make_cfg(*flags), env_info)
    return str(excinfo.value)


def assert_valid(*flags: str, env_info: EnvInfo = ENV_INFO):
    cfg = make_cfg(*flags)
    assert preprocess_cfg(cfg, env_info) is cfg
    return cfg


def suggested(flag: str, message: str) -> List[int]:
    """Values of ``--flag`` in the "For example ..." suggestions of ``message``."""
    examples = " ".join(re.findall(r"For example ([^\n]*)", message))
    return [int(value) for value in re.findall(rf"--{flag}=(\d+)", examples)]


@pytest.fixture
def clean_env_registry() -> Iterator[None]:
    registry = sf_global_context().env_registry
    saved = dict(registry)
    yield
    registry.clear()
    registry.update(saved)


# ---- preprocess_cfg ------------------------------------------------------------------------------------------


def test_defaults_are_valid_and_recurrence_becomes_rollout_for_rnn() -> None:
    cfg = assert_valid()
    assert cfg.recurrence == cfg.rollout == 32


def test_auto_recurrence_is_one_without_rnn() -> None:
    assert assert_valid("--use_rnn=False").recurrence == 1


def test_auto_recurrence_is_rollout_with_vtrace_even_without_rnn() -> None:
    cfg = assert_valid("--use_rnn=False", "--with_vtrace=True", "--normalize_returns=False")
    assert cfg.recurrence == 32
    assert auto_recurrence(cfg) == 32


def test_explicit_recurrence_is_kept() -> None:
    assert assert_valid("--recurrence=16").recurrence == 16


def test_preprocess_works_on_attr_dict_configs() -> None:
    cfg = AttrDict(vars(make_cfg("--use_rnn=False")))
    assert preprocess_cfg(cfg, ENV_INFO) is cfg
    assert cfg.recurrence == 1


def test_verify_cfg_checks_without_modifying_and_returns_true() -> None:
    cfg = make_cfg()
    assert verify_cfg(cfg, ENV_INFO) is True
    assert cfg.recurrence == -1


@pytest.mark.parametrize(
    "flags",
    [
        ["--async_rl=False", "--num_envs_per_worker=2", "--batch_size=256"],  # 4*2*32 = 256 samples per rollout
        ["--async_rl=False", "--num_envs_per_worker=2", "--batch_size=128", "--num_batches_per_epoch=4"],
        ["--async_rl=False", "--num_envs_per_worker=2", "--batch_size=512"],  # two rollouts per iteration
        ["--num_envs_per_worker=8", "--worker_num_splits=4", "--batch_size=64"],  # blocks of 2 envs * 32
        ["--num_envs_per_worker=3", "--worker_num_splits=1", "--batch_size=96", "--use_rnn=False"],
        ["--rollout=64", "--recurrence=16", "--batch_size=2048"],
        ["--use_rnn=False", "--recurrence=1", "--batch_size=32"],
        ["--serial_mode=True", "--async_rl=False", "--batch_size=256"],
        ["--inference_backend=python"],
        ["--inference_backend=torchscript", "--env_backend=gym"],
    ],
)
def test_valid_configurations_pass(flags: List[str]) -> None:
    assert_valid(*flags)


# ---- Sample Factory's checks ---------------------------------------------------------------------------------


def test_envs_per_worker_must_be_a_multiple_of_splits() -> None:
    message = cfg_error("--num_envs_per_worker=3")
    assert "--num_envs_per_worker=3 must be a multiple of --worker_num_splits=2" in message
    assert "--num_envs_per_worker=2" in message and "--num_envs_per_worker=4" in message
    assert "--worker_num_splits=1" in message


def test_normalize_returns_is_incompatible_with_vtrace() -> None:
    message = cfg_error("--with_vtrace=True")
    assert "--normalize_returns=True is not supported with --with_vtrace=True" in message
    assert "--normalize_returns=False" in message


def test_sync_mode_requires_dataset_to_be_a_multiple_of_samples_per_rollout() -> None:
    message = cfg_error("--async_rl=False", "--num_workers=10", "--num_envs_per_worker=4")
    assert "In sync mode (--async_rl=False)" in message
    assert (
        "--num_workers=10 * --num_envs_per_worker=4 * num_agents=1 * --rollout=32 // --num_policies=1 = 1280" in message
    )
    assert "--num_batches_per_epoch=1 * --batch_size=1024 = 1024" in message
    assert "ratio: 0.8 (must be a positive integer)" in message
    assert "--async_rl=True" in message
    assert "--batch_size=1280" in message and "--num_batches_per_epoch=5" in message and "--num_workers=8" in message


def test_sync_mode_dataset_smaller_than_one_rollout_fails() -> None:
    # 512 samples per rollout, dataset 256: a multiple in the wrong direction is not enough.
    message = cfg_error("--async_rl=False", "--num_envs_per_worker=4", "--batch_size=256")
    assert "ratio: 0.5" in message


def test_sync_mode_counts_agents() -> None:
    assert_valid("--async_rl=False", "--num_envs_per_worker=2", "--batch_size=256")
    message = cfg_error("--async_rl=False", "--num_envs_per_worker=2", "--batch_size=256", env_info=TWO_AGENTS)
    assert "num_agents=2" in message and "= 512" in message


def test_sync_mode_suggestions_are_valid() -> None:
    message = cfg_error("--async_rl=False", "--num_workers=10", "--num_envs_per_worker=4")
    for batch_size in suggested("batch_size", message):
        assert_valid("--async_rl=False", "--num_workers=10", "--num_envs_per_worker=4", f"--batch_size={batch_size}")
    assert suggested("num_workers", message) == [8]
    for workers in suggested("num_workers", message):
        assert_valid("--async_rl=False", f"--num_workers={workers}", "--num_envs_per_worker=4")


def test_rnn_requires_recurrence_above_one() -> None:
    message = cfg_error("--recurrence=1")
    assert "must be > 1 to train an RNN policy (--use_rnn=True)" in message
    assert "--recurrence=32" in message and "--use_rnn=False" in message


def test_vtrace_requires_recurrence_equal_to_rollout() -> None:
    message = cfg_error("--with_vtrace=True", "--normalize_returns=False", "--recurrence=16")
    assert "V-trace (--with_vtrace=True) needs --recurrence equal to --rollout" in message
    assert "--recurrence=32" in message


def test_vtrace_check_applies_to_feed_forward_policies_too() -> None:
    message = cfg_error("--with_vtrace=True", "--normalize_returns=False", "--use_rnn=False", "--recurrence=1")
    assert "needs --recurrence equal to --rollout" in message


def test_async_serial_and_recurrence_without_rnn_warn(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rl")
    assert_valid("--serial_mode=True", "--use_rnn=False", "--recurrence=32")
    text = caplog.text
    assert "serial mode" in text and "async_rl" in text
    assert "--recurrence=32 is set but --use_rnn=False" in text


def test_valid_default_config_logs_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rl")
    assert_valid()
    assert caplog.text == ""


# ---- pysf's checks -------------------------------------------------------------------------------------------


def test_envs_per_worker_must_be_at_least_splits() -> None:
    message = cfg_error("--num_envs_per_worker=1")
    assert "--num_envs_per_worker=1 is less than --worker_num_splits=2" in message
    assert "--num_envs_per_worker=2" in message and "--worker_num_splits=1" in message


def test_batch_size_must_be_a_multiple_of_recurrence() -> None:
    message = cfg_error("--batch_size=1000")
    assert "--batch_size=1000 must be a multiple of --recurrence=32" in message
    assert "--batch_size=992" in message and "--batch_size=1024" in message


def test_batch_size_multiple_of_recurrence_mentions_automatic_recurrence() -> None:
    assert "--recurrence=-1 stands for --rollout" in cfg_error("--batch_size=1000")
    with pytest.raises(ValueError, match="--recurrence=-1 stands for --rollout"):
        verify_cfg(make_cfg("--batch_size=1000"), ENV_INFO)
    assert "--recurrence=-1 stands for" not in cfg_error("--batch_size=1000", "--recurrence=8")


def test_dataset_must_be_a_multiple_of_rollout() -> None:
    message = cfg_error("--use_rnn=False", "--batch_size=1000")
    assert (
        "(--batch_size=1000 * --num_batches_per_epoch=1 = 1000 samples) must be a multiple of --rollout=32" in message
    )
    assert "--batch_size=992" in message and "--num_batches_per_epoch=4" in message


def test_dataset_may_be_a_multiple_of_rollout_only_in_total() -> None:
    # 48 * 2 = 96 = 3 rollouts: minibatches need not align with trajectories, the dataset must.
    flags = ["--use_rnn=False", "--worker_num_splits=1", "--num_envs_per_worker=1"]
    assert_valid(*flags, "--batch_size=48", "--num_batches_per_epoch=2")


def test_async_dataset_need_not_be_a_whole_number_of_sampler_blocks() -> None:
    """Sample Factory accepts these (its gym example: 20 envs per worker, batch 512); pysf's batcher adapts."""
    assert_valid("--use_rnn=False", "--num_envs_per_worker=8", "--batch_size=96")
    assert_valid("--use_rnn=False", "--num_envs_per_worker=20", "--batch_size=512", "--recurrence=1")



def test_multi_agent_envs_are_accepted() -> None:
    assert_valid("--use_rnn=False", "--batch_size=32", env_info=TWO_AGENTS)
    assert_valid("--use_rnn=False", "--batch_size=32", "--batched_sampling=True", env_info=TWO_AGENTS)


def test_the_episode_counter_needs_single_agent_per_env_envs() -> None:
    assert "num_agents=2. Use --episode_counter=False" in cfg_error("--episode_counter=True", env_info=TWO_AGENTS)
    assert "the envs are batches" in cfg_error("--episode_counter=True", "--batched_sampling=True", "--env_backend=gym")


@pytest.mark.parametrize(
    "flag, expected",
    [
        ("--actor_worker_gpus=0", "CPU only"),
        ("--decorrelate_experience_max_seconds=10", "--decorrelate_experience_max_seconds=0"),
        ("--algo=PPO", "APPO is the only algorithm"),
    ],
)
def test_flags_pysf_cannot_honour_yet_stop_before_training(flag: str, expected: str) -> None:
    message = cfg_error(*flag.split())
    assert flag.split("=")[0] in message and expected in message


def test_several_policies_are_accepted_in_async_mode() -> None:
    assert assert_valid("--num_policies=2", "--async_rl=True").num_policies == 2


def test_sync_mode_with_several_policies_needs_an_even_split_and_one_rollout_per_iteration() -> None:
    # 2 workers x 4 envs x 8 steps // 2 policies = 32 samples per policy per rollout
    sync = ["--async_rl=False", "--num_policies=2", "--num_workers=2", "--num_envs_per_worker=4", "--rollout=8",
            "--use_rnn=False", "--num_batches_per_epoch=1"]
    assert assert_valid(*sync, "--batch_size=32").num_policies == 2
    assert "must equal 32" in cfg_error(*sync, "--batch_size=64")
    odd = ["--async_rl=False", "--num_policies=3", "--num_workers=2", "--num_envs_per_worker=4", "--rollout=8",
           "--use_rnn=False", "--num_batches_per_epoch=1", "--batch_size=16"]
    assert "make their number a multiple of 3" in cfg_error(*odd)


def test_heartbeat_flags_are_accepted() -> None:
    assert assert_valid("--heartbeat_interval=5", "--heartbeat_reporting_interval=30").heartbeat_reporting_interval == 30


def test_recurrence_suggestion_names_each_alternative_once() -> None:
    message = cfg_error("--recurrence=32", "--rollout=16", "--batch_size=64", "--with_vtrace=False")
    assert "--rollout=16 must be a multiple of --recurrence=32" in message
    assert message.count("--recurrence=16") == 1, message


def test_rnn_rollout_must_be_a_multiple_of_recurrence() -> None:
    message = cfg_error("--recurrence=12", "--batch_size=96", "--rollout=32", "--num_batches_per_epoch=4")
    assert "--rollout=32 must be a multiple of --recurrence=12 for RNN policies" in message
    assert "--recurrence=8" in message and "--recurrence=32" in message


@pytest.mark.parametrize(
    "flags",
    [
        ["--batch_size=1000"],
        ["--use_rnn=False", "--batch_size=1000"],
        ["--use_rnn=False", "--num_envs_per_worker=8", "--batch_size=100"],
        ["--num_envs_per_worker=6", "--worker_num_splits=3", "--rollout=24", "--batch_size=100"],
        ["--async_rl=False", "--num_envs_per_worker=6", "--rollout=16", "--batch_size=1000"],
    ],
)
def test_batch_size_suggestions_fix_the_configuration(flags: List[str]) -> None:
    message = cfg_error(*flags)
    batch_sizes = suggested("batch_size", message)
    assert batch_sizes
    for batch_size in batch_sizes:
        assert_valid(*flags, f"--batch_size={batch_size}")


def test_aoti_inference_backend_is_not_available_yet() -> None:
    message = cfg_error("--inference_backend=aoti")
    assert "--inference_backend=aoti (AOTInductor) is not available in pysf yet" in message
    assert "--inference_backend=torchscript" in message and "--inference_backend=python" in message


@needs_native
def test_native_env_backend_requires_a_native_env() -> None:
    message = cfg_error("--env=CartPol-v1", "--env_backend=native")
    assert "--env_backend=native requires an env with a native (C++) implementation" in message
    assert "Did you mean --env=CartPole-v1?" in message
    assert "--env_backend=auto" in message and "--env_backend=gym" in message
    assert_valid("--env_backend=native")


@pytest.mark.parametrize(
    "flag", ["--batch_size=0", "--num_workers=0", "--worker_num_splits=0", "--rollout=0", "--num_envs_per_worker=-1"]
)
def test_non_positive_sizes_fail_clearly(flag: str) -> None:
    message = cfg_error(flag)
    assert f"{flag}: these flags must be positive integers (>= 1)" in message


@pytest.mark.parametrize("recurrence", ["0", "-2"])
def test_invalid_recurrence(recurrence: str) -> None:
    message = cfg_error(f"--recurrence={recurrence}")
    assert f"--recurrence={recurrence} is invalid: use -1 (automatic" in message


def test_all_problems_are_reported_together() -> None:
    message = cfg_error("--inference_backend=aoti", "--with_vtrace=True", "--num_envs_per_worker=3")
    assert message.startswith("Invalid configuration (3 problems):")
    assert message.count("\n- ") == 3


# ---- check_env_name ------------------------------------------------------------------------------------------


def _make_dummy_env(full_env_name, cfg, env_config, render_mode):  # pragma: no cover - never called
    raise AssertionError("not created in these tests")


@pytest.mark.parametrize(
    "name",
    ["CartPole-v1", "CartPole-v0", "LunarLander-v3", "CartPole", "gymnasium.envs.classic_control:CartPole-v1"],
)
def test_gymnasium_ids_are_known(name: str) -> None:
    check_env_name(name)


@needs_native
def test_native_envs_are_known() -> None:
    for name in _native_names():
        check_env_name(name)


def test_registered_envs_are_known(clean_env_registry: None) -> None:
    register_env("my_custom_env", _make_dummy_env)
    check_env_name("my_custom_env")


def test_unknown_env_suggests_close_gymnasium_and_native_names() -> None:
    with pytest.raises(ValueError) as excinfo:
        check_env_name("CartPol-v1")
    message = str(excinfo.value)
    assert message.startswith("Unknown env 'CartPol-v1'. Did you mean: CartPole-v1, CartPole-v0")
    assert "register_env" in message


def test_unknown_env_suggests_registered_names_and_lists_them(clean_env_registry: None) -> None:
    register_env("my_custom_env", _make_dummy_env)
    with pytest.raises(ValueError) as excinfo:
        check_env_name("my_custon_env")
    message = str(excinfo.value)
    assert "Did you mean: my_custom_env?" in message
    assert "Registered envs: my_custom_env" in message
    assert "Native envs:" in message


def test_unknown_env_suggestions_ignore_case() -> None:
    with pytest.raises(ValueError, match=r"Did you mean: CartPole-v1"):
        check_env_name("cartpole-v1")


def test_unknown_env_without_close_match() -> None:
    with pytest.raises(ValueError) as excinfo:
        check_env_name("zzzzzzzzzz")
    assert "Did you mean" not in str(excinfo.value)
    assert str(excinfo.value).startswith("Unknown env 'zzzzzzzzzz'.")


def test_unknown_version_is_unknown() -> None:
    with pytest.raises(ValueError, match=r"Unknown env 'CartPole-v7'\. Did you mean: CartPole-v"):
        check_env_name("CartPole-v7")


def test_module_prefix_that_cannot_be_imported() -> None:
    with pytest.raises(ValueError, match=r"could not import module 'no_such_module_xyz'"):
        check_env_name("no_such_module_xyz:Foo-v0")


def test_close_matches_is_case_insensitive_and_ordered() -> None:
    matches = close_matches("cartpole-v1", ["Pendulum-v1", "CartPole-v0", "CartPole-v1"])
    assert matches[:2] == ["CartPole-v1", "CartPole-v0"]
    assert close_matches("abc", []) == []


def test_negative_torch_threads_are_rejected():
    with pytest.raises(ValueError, match=r"--torch_threads=-1: use a number of threads, or 0 for the automatic choice"):
        verify_cfg(make_cfg("--torch_threads=-1"), ENV_INFO)
