"""Configuration layer: every Sample Factory flag with its reference default, parsing conventions and the
parse_sf_args / parse_full_cfg protocol (reference: /work/shared/reference/sample_factory.md, sections 1.2 and 2)."""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import os
import pickle
from typing import Any, Dict, List

import pytest

from pysf.cfg.arguments import (
    cfg_dict,
    cfg_str,
    default_cfg,
    parse_args,
    parse_full_cfg,
    parse_sf_args,
    postprocess_args,
)
from pysf.cfg.cfg import str2bool
from pysf.utils.attr_dict import AttrDict

# Defaults of every training flag, transcribed from the reference (section 2), plus the HEAD-only flags.
REFERENCE_TRAINING_DEFAULTS: Dict[str, Any] = {
    # basic
    "help": False,
    "algo": "APPO",
    "env": None,  # required; None is the argparse default
    "experiment": "default_experiment",
    "train_dir": os.path.join(os.getcwd(), "train_dir"),
    "restart_behavior": "resume",
    "device": "gpu",
    "seed": None,
    # system / sampling
    "num_policies": 1,
    "async_rl": True,
    "serial_mode": False,
    "batched_sampling": False,
    "num_batches_to_accumulate": 2,
    "worker_num_splits": 2,
    "policy_workers_per_policy": 1,
    "max_policy_lag": 1000,
    "num_workers": multiprocessing.cpu_count(),
    "num_envs_per_worker": 2,
    "decorrelate_experience_max_seconds": 0,
    "decorrelate_envs_on_one_worker": True,
    "actor_worker_gpus": [],
    "set_workers_cpu_affinity": True,
    "force_envs_single_thread": False,
    "default_niceness": 0,
    "heartbeat_interval": 20,
    "heartbeat_reporting_interval": 180,
    "benchmark": False,
    # data regime
    "batch_size": 1024,
    "num_batches_per_epoch": 1,
    "num_epochs": 1,
    "rollout": 32,
    "recurrence": -1,
    "shuffle_minibatches": False,
    # RL
    "gamma": 0.99,
    "reward_scale": 1.0,
    "reward_clip": 1000.0,
    "value_bootstrap": False,
    "normalize_returns": True,
    "exploration_loss_coeff": 0.003,
    "value_loss_coeff": 0.5,
    "kl_loss_coeff": 0.0,
    "exploration_loss": "entropy",
    "gae_lambda": 0.95,
    "ppo_clip_ratio": 0.1,
    "ppo_clip_value": 1.0,
    "with_vtrace": False,
    "vtrace_rho": 1.0,
    "vtrace_c": 1.0,
    # optimization
    "optimizer": "adam",
    "adam_eps": 1e-6,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "max_grad_norm": 4.0,
    "learning_rate": 1e-4,
    "lr_schedule": "constant",
    "lr_schedule_kl_threshold": 0.008,
    "lr_adaptive_min": 1e-6,
    "lr_adaptive_max": 1e-2,
    # observation preprocessing
    "obs_subtract_mean": 0.0,
    "obs_scale": 1.0,
    "normalize_input": True,
    "normalize_input_keys": None,
    # model
    "encoder_mlp_layers": [512, 512],
    "encoder_conv_architecture": "convnet_simple",
    "encoder_conv_mlp_layers": [512],
    "use_rnn": True,
    "rnn_size": 512,
    "rnn_type": "gru",
    "rnn_num_layers": 1,
    "decoder_mlp_layers": [],
    "nonlinearity": "elu",
    "policy_initialization": "orthogonal",
    "policy_init_gain": 1.0,
    "actor_critic_share_weights": True,
    "adaptive_stddev": True,
    "continuous_tanh_scale": 0.0,
    "initial_stddev": 1.0,
    # env-related
    "use_env_info_cache": False,
    "env_gpu_actions": False,
    "env_gpu_observations": True,
    "env_frameskip": 1,
    "env_framestack": 1,
    "pixel_format": "CHW",
    "use_record_episode_statistics": False,
    "episode_counter": False,
    # logging / summaries
    "log_to_file": True,
    "experiment_summaries_interval": 10,
    "flush_summaries_interval": 30,
    "stats_avg": 100,
    "summaries_use_frameskip": True,
    # termination / checkpointing
    "train_for_env_steps": int(1e10),
    "train_for_seconds": int(1e10),
    "save_every_sec": 120,
    "keep_checkpoints": 2,
    "load_checkpoint_kind": "latest",
    "save_milestones_sec": -1,
    "save_best_every_sec": 5,
    "save_best_metric": "reward",
    "save_best_after": 100000,
    # wandb
    "with_wandb": False,
    "wandb_user": None,
    "wandb_project": "sample_factory",
    "wandb_group": None,
    "wandb_job_type": "SF",
    "wandb_tags": [],
    "wandb_dir": os.path.join(os.getcwd(), "wandb"),
    # PBT
    "with_pbt": False,
    "pbt_mix_policies_in_one_env": True,
    "pbt_period_env_steps": int(5e6),
    "pbt_start_mutation": int(2e7),
    "pbt_replace_fraction": 0.3,
    "pbt_mutation_rate": 0.15,
    "pbt_replace_reward_gap": 0.1,
    "pbt_replace_reward_gap_absolute": 1e-6,
    "pbt_optimize_gamma": False,
    "pbt_target_objective": "true_objective",
    "pbt_perturb_min": 1.1,
    "pbt_perturb_max": 1.5,
}

# Flags added by pysf on top of Sample Factory's.
PYSF_TRAINING_DEFAULTS: Dict[str, Any] = {
    "inference_backend": "auto",
    "env_backend": "auto",
    "torch_threads": 0,
    "frozen_policies": [],
}

# Evaluation-only flags (parse_sf_args(evaluation=True)).
REFERENCE_EVAL_DEFAULTS: Dict[str, Any] = {
    "fps": 0,
    "eval_env_frameskip": None,
    "no_render": False,
    "save_video": False,
    "video_frames": 1e9,
    "video_name": None,
    "max_num_frames": 1e9,
    "max_num_episodes": 1e9,
    "push_to_hub": False,
    "hf_repository": None,
    "policy_index": 0,
    "eval_deterministic": False,
    "train_script": None,
    "enjoy_script": None,
    "sample_env_episodes": 256,
    "csv_folder_name": None,
}

REFERENCE_CHOICES: Dict[str, List[str]] = {
    "restart_behavior": ["resume", "restart", "overwrite"],
    "device": ["gpu", "cpu"],
    "exploration_loss": ["entropy", "symmetric_kl"],
    "optimizer": ["adam", "lamb"],
    "lr_schedule": ["constant", "kl_adaptive_minibatch", "kl_adaptive_epoch", "linear_decay"],
    "load_checkpoint_kind": ["latest", "best"],
    "encoder_conv_architecture": ["convnet_simple", "convnet_impala", "convnet_atari", "resnet_impala"],
    "rnn_type": ["gru", "lstm"],
    "nonlinearity": ["elu", "relu", "tanh"],
    "policy_initialization": ["orthogonal", "xavier_uniform", "torch_default"],
    "inference_backend": ["auto", "torchscript", "python", "aoti"],
    "env_backend": ["auto", "native", "gym"],
}

POSTPROCESS_KEYS = {"command_line", "cli_args", "git_hash", "git_repo_name"}
ENV_ARGV = ["--env=my_env"]


def _defaults_by_dest(parser: argparse.ArgumentParser) -> Dict[str, Any]:
    return {action.dest: parser.get_default(action.dest) for action in parser._actions}


# ----------------------------------------------------------------------------------------------------------------
# Flags and defaults
# ----------------------------------------------------------------------------------------------------------------


def test_training_parser_has_exactly_the_reference_flags_and_defaults() -> None:
    parser, _ = parse_sf_args(ENV_ARGV)
    expected = {**REFERENCE_TRAINING_DEFAULTS, **PYSF_TRAINING_DEFAULTS}
    assert _defaults_by_dest(parser) == expected


def test_evaluation_parser_adds_exactly_the_eval_flags() -> None:
    parser, partial = parse_sf_args(ENV_ARGV, evaluation=True)
    expected = {**REFERENCE_TRAINING_DEFAULTS, **PYSF_TRAINING_DEFAULTS, **REFERENCE_EVAL_DEFAULTS}
    assert _defaults_by_dest(parser) == expected
    assert partial.max_num_frames == 1e9 and partial.no_render is False


def test_eval_flags_are_absent_without_evaluation() -> None:
    _, partial = parse_sf_args(ENV_ARGV)
    assert not any(hasattr(partial, name) for name in REFERENCE_EVAL_DEFAULTS)
    with pytest.raises(SystemExit) as error:
        parse_args(ENV_ARGV + ["--no_render"])
    assert error.value.code == 2


def test_default_cfg_holds_every_default() -> None:
    cfg = default_cfg()
    for name, default in {**REFERENCE_TRAINING_DEFAULTS, **PYSF_TRAINING_DEFAULTS}.items():
        if name in ("algo", "env", "experiment"):
            continue
        assert getattr(cfg, name) == default, name
    assert (cfg.algo, cfg.env, cfg.experiment) == ("APPO", "env", "test")
    assert POSTPROCESS_KEYS <= set(vars(cfg))


def test_default_values_have_the_flag_type() -> None:
    """An int flag must default to an int (not 1e10 as float), so config.json round-trips unchanged."""
    parser, _ = parse_sf_args(ENV_ARGV, evaluation=True)
    for action in parser._actions:
        if action.default is None or action.type is None:
            continue
        values = action.default if isinstance(action.default, list) else [action.default]
        for value in values:
            if action.type is int:
                assert type(value) is int, action.dest
            elif action.type is float:
                assert type(value) is float, action.dest
            elif action.type is str:
                assert type(value) is str, action.dest
            else:
                assert type(value) is bool, action.dest


def test_choices_match_reference() -> None:
    parser, _ = parse_sf_args(ENV_ARGV)
    choices = {action.dest: list(action.choices) for action in parser._actions if action.choices is not None}
    assert choices == REFERENCE_CHOICES


def test_every_flag_has_help_text() -> None:
    parser, _ = parse_sf_args(ENV_ARGV, evaluation=True)
    for action in parser._actions:
        assert action.help and len(action.help) > 10, action.dest


def test_pysf_specific_flags_say_so_in_help() -> None:
    parser, _ = parse_sf_args(ENV_ARGV)
    for action in parser._actions:
        if action.dest in PYSF_TRAINING_DEFAULTS:
            assert "pysf-specific" in action.help


# ----------------------------------------------------------------------------------------------------------------
# Parsing conventions
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("True", True), ("true", True), ("1", True), ("yes", True), ("YES", True),
     ("False", False), ("false", False), ("0", False), ("no", False), (True, True), (False, False)],
)
def test_str2bool_accepts(text: Any, expected: bool) -> None:
    assert str2bool(text) is expected


@pytest.mark.parametrize("text", ["", "maybe", "2", "tru"])
def test_str2bool_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        str2bool(text)


@pytest.mark.parametrize("flag_args", [["--use_rnn=False"], ["--use_rnn", "False"], ["--use_rnn=0"], ["--use_rnn", "no"]])
def test_boolean_flag_false(flag_args: List[str]) -> None:
    assert parse_args(ENV_ARGV + flag_args).use_rnn is False


def test_boolean_flag_true_and_invalid() -> None:
    assert parse_args(ENV_ARGV + ["--serial_mode=True"]).serial_mode is True
    with pytest.raises(SystemExit) as error:
        parse_args(ENV_ARGV + ["--serial_mode=perhaps"])
    assert error.value.code == 2


def test_list_flags() -> None:
    cfg = parse_args(ENV_ARGV + ["--encoder_mlp_layers", "256", "128", "--wandb_tags", "a", "b"])
    assert cfg.encoder_mlp_layers == [256, 128]
    assert cfg.wandb_tags == ["a", "b"]
    assert parse_args(ENV_ARGV + ["--encoder_mlp_layers"]).encoder_mlp_layers == []
    assert parse_args(ENV_ARGV + ["--actor_worker_gpus", "0", "1"]).actor_worker_gpus == [0, 1]
    assert parse_args(ENV_ARGV + ["--normalize_input_keys", "obs"]).normalize_input_keys == ["obs"]


def test_list_flag_rejects_non_integers() -> None:
    with pytest.raises(SystemExit):
        parse_args(ENV_ARGV + ["--encoder_mlp_layers", "256", "big"])


def test_list_defaults_are_not_shared_between_configs() -> None:
    first = default_cfg()
    first.encoder_mlp_layers.append(7)
    first.actor_worker_gpus.append(0)
    second = default_cfg()
    assert second.encoder_mlp_layers == [512, 512]
    assert second.actor_worker_gpus == []


def test_lr_schedule_linear_decay_is_accepted_on_the_command_line() -> None:
    assert parse_args(ENV_ARGV + ["--lr_schedule", "linear_decay"]).lr_schedule == "linear_decay"


@pytest.mark.parametrize(
    "bad_flag",
    ["--rnn_type=rnn", "--lr_schedule=cosine", "--device=tpu", "--inference_backend=onnx", "--env_backend=jax"],
)
def test_unknown_choice_is_an_argparse_error(bad_flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as error:
        parse_args(ENV_ARGV + [bad_flag])
    assert error.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_pysf_flags_parse() -> None:
    cfg = parse_args(ENV_ARGV + ["--inference_backend=python", "--env_backend", "gym"])
    assert (cfg.inference_backend, cfg.env_backend) == ("python", "gym")


def test_missing_env_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as error:
        parse_args(["--experiment=x"])
    assert error.value.code == 2
    assert "--env" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------------------
# The two-pass protocol used by training scripts
# ----------------------------------------------------------------------------------------------------------------


def test_partial_parse_tolerates_script_flags_and_full_parse_includes_them() -> None:
    argv = ["--env=doom_basic", "--res_w=128", "--batch_size=256"]
    parser, partial = parse_sf_args(argv)
    assert partial.env == "doom_basic" and partial.batch_size == 256
    assert not hasattr(partial, "res_w")

    parser.add_argument("--res_w", type=int, default=64, help="Render width.")
    parser.add_argument("--res_h", type=int, default=48, help="Render height.")
    cfg = parse_full_cfg(parser, argv)
    assert (cfg.res_w, cfg.res_h, cfg.batch_size) == (128, 48, 256)


def test_full_parse_rejects_unknown_flags() -> None:
    argv = ENV_ARGV + ["--not_a_flag=1"]
    parser, _ = parse_sf_args(argv)
    with pytest.raises(SystemExit) as error:
        parse_full_cfg(parser, argv)
    assert error.value.code == 2


def test_set_defaults_overrides_defaults_like_env_scripts() -> None:
    argv = ENV_ARGV + ["--num_epochs=2"]
    parser, _ = parse_sf_args(argv)
    parser.set_defaults(
        encoder_conv_architecture="convnet_atari",
        obs_scale=255.0,
        lr_schedule="linear_decay",
        use_rnn=False,
        num_epochs=4,
        num_workers=8,
    )
    cfg = parse_full_cfg(parser, argv)
    assert cfg.encoder_conv_architecture == "convnet_atari"
    assert cfg.obs_scale == 255.0
    assert cfg.lr_schedule == "linear_decay"
    assert cfg.use_rnn is False and cfg.num_workers == 8
    assert cfg.num_epochs == 2  # the command line still wins over a script default
    assert cfg.cli_args == {"env": "my_env", "num_epochs": 2}


def test_cli_args_holds_only_explicit_flags() -> None:
    argv = ["--env=my_env", "--batch_size", "1024", "--use_rnn=False", "--encoder_mlp_layers", "--seed=3"]
    cfg = parse_args(argv)
    # batch_size equals its default but was passed explicitly, so it must be recorded.
    assert cfg.cli_args == {
        "env": "my_env",
        "batch_size": 1024,
        "use_rnn": False,
        "encoder_mlp_layers": [],
        "seed": 3,
    }


def test_cli_args_with_store_true_eval_flags_and_script_defaults() -> None:
    argv = ENV_ARGV + ["--no_render", "--max_num_frames=100"]
    parser, _ = parse_sf_args(argv, evaluation=True)
    parser.set_defaults(fps=35, my_script_key="value")
    cfg = parse_full_cfg(parser, argv)
    assert cfg.my_script_key == "value" and cfg.fps == 35
    assert cfg.cli_args == {"env": "my_env", "no_render": True, "max_num_frames": 100}
    # computing cli_args must leave the caller's parser defaults alone
    assert parser.get_default("fps") == 35 and parser.get_default("batch_size") == 1024


def test_command_line_and_git_info() -> None:
    argv = ENV_ARGV + ["--batch_size", "64"]
    cfg = parse_args(argv)
    assert cfg.command_line == "--env=my_env --batch_size 64"
    assert isinstance(cfg.git_hash, str) and cfg.git_hash
    assert isinstance(cfg.git_repo_name, str) and cfg.git_repo_name


def test_git_info_outside_a_repository_is_unknown(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    # Stop git from discovering a repository in a parent of tmp_path.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    cfg = parse_args(ENV_ARGV)
    assert (cfg.git_hash, cfg.git_repo_name) == ("unknown", "unknown")
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_git_info_without_git_executable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    cfg = parse_args(ENV_ARGV)
    assert (cfg.git_hash, cfg.git_repo_name) == ("unknown", "unknown")


def test_parse_args_defaults_to_sys_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["train.py", "--env=from_sys_argv", "--rollout=8"])
    cfg = parse_args()
    assert (cfg.env, cfg.rollout) == ("from_sys_argv", 8)
    assert cfg.command_line == "--env=from_sys_argv --rollout=8"


def test_parse_args_evaluation() -> None:
    cfg = parse_args(ENV_ARGV + ["--no_render", "--eval_deterministic=True", "--sample_env_episodes=8"], evaluation=True)
    assert cfg.no_render is True and cfg.eval_deterministic is True and cfg.sample_env_episodes == 8


def test_postprocess_args_on_a_plain_parse() -> None:
    parser, _ = parse_sf_args(ENV_ARGV)
    args = parser.parse_args(ENV_ARGV + ["--gamma=0.9"])
    cfg = postprocess_args(args, ENV_ARGV + ["--gamma=0.9"], parser)
    assert cfg is args
    assert cfg.cli_args == {"env": "my_env", "gamma": 0.9}


# ----------------------------------------------------------------------------------------------------------------
# --help
# ----------------------------------------------------------------------------------------------------------------


def test_help_prints_all_flags_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--env=my_env", "--help"]
    parser, partial = parse_sf_args(argv)
    assert partial.help is True
    parser.add_argument("--my_script_flag", type=int, default=5, help="A flag the script added.")
    with pytest.raises(SystemExit) as error:
        parse_full_cfg(parser, argv)
    assert error.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--batch_size", "--inference_backend", "--env_backend", "--my_script_flag", "(default: 1024)"):
        assert flag in out


@pytest.mark.parametrize("help_flag", ["-h", "--help"])
def test_help_works_without_env(help_flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as error:
        parse_args([help_flag], evaluation=True)
    assert error.value.code == 0
    out = capsys.readouterr().out
    assert "--env" in out and "--max_num_frames" in out


def test_help_waiver_does_not_leak_into_later_parses() -> None:
    parser, _ = parse_sf_args(["-h"])
    env_action = next(action for action in parser._actions if action.dest == "env")
    assert env_action.required is True


# ----------------------------------------------------------------------------------------------------------------
# cfg_dict / cfg_str / AttrDict
# ----------------------------------------------------------------------------------------------------------------


def test_cfg_dict_and_cfg_str() -> None:
    cfg = default_cfg()
    as_dict = cfg_dict(cfg)
    assert isinstance(as_dict, AttrDict)
    assert as_dict.batch_size == 1024 and as_dict["rollout"] == 32
    assert cfg_dict({"a": 1}).a == 1
    lines = cfg_str(cfg).splitlines()
    assert "batch_size=1024" in lines and "env=env" in lines
    assert len(lines) == len(vars(cfg))


def test_attr_dict() -> None:
    d = AttrDict(a=1)
    d.b = 2
    assert d == {"a": 1, "b": 2} and d.a == 1 and d["b"] == 2
    del d.a
    assert "a" not in d
    assert not hasattr(d, "missing") and getattr(d, "missing", 3) == 3
    with pytest.raises(AttributeError):
        del d.missing
    d["items"] = "shadow?"
    assert callable(d.items)  # dict methods win over keys, so iterating a config never breaks

    restored = pickle.loads(pickle.dumps(d))
    assert isinstance(restored, AttrDict) and restored == d and restored.b == 2
    clone = copy.deepcopy(d)
    clone.b = 5
    assert d.b == 2
    assert "b" in dir(d)


# ---- where the names live ----------------------------------------------------------------------------------

# Sample Factory 2.1.1's public names in sample_factory.cfg.arguments (the flag groups are imported there too).
SF_ARGUMENTS_NAMES = (
    "parse_sf_args", "parse_full_cfg", "postprocess_args", "preprocess_cfg", "verify_cfg", "cfg_dict", "cfg_str",
    "default_cfg", "load_from_checkpoint", "maybe_load_from_checkpoint", "add_basic_cli_args", "add_rl_args",
    "add_model_args", "add_default_env_args", "add_wandb_args", "add_pbt_args", "add_eval_args",
)


def test_sample_factorys_names_import_from_arguments_and_the_checks_live_in_verify() -> None:
    import pysf.cfg.arguments as arguments
    import pysf.cfg.verify as verify

    missing = [name for name in SF_ARGUMENTS_NAMES if not hasattr(arguments, name)]
    assert not missing
    for name in ("preprocess_cfg", "verify_cfg", "check_env_name", "not_yet_supported_errors", "auto_recurrence"):
        assert getattr(arguments, name) is getattr(verify, name) and getattr(verify, name).__module__ == "pysf.cfg.verify"


def test_trainer_flag_names_are_every_flag_outside_the_env_group() -> None:
    from pysf.cfg.arguments import add_sf_args, trainer_flag_names
    from pysf.cfg.cfg import add_default_env_args

    every = argparse.ArgumentParser(add_help=False)
    add_sf_args(every, evaluation=True)
    env_group = argparse.ArgumentParser(add_help=False)
    add_default_env_args(env_group)
    env_flags = {action.dest for action in env_group._actions}
    assert trainer_flag_names() == {action.dest for action in every._actions} - env_flags
    assert {"learning_rate", "env", "max_num_episodes", "with_wandb"} <= trainer_flag_names()
    assert "env_frameskip" not in trainer_flag_names()
