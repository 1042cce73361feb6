"""Experiment folder and resume logic (reference sections 1.2 make_runner, 5.1 and 5.2): config.json, the
--restart_behavior modes, and reloading a saved configuration with only the explicit command-line flags on top."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, List

import pytest

from pysf.cfg import experiment as experiment_module
from pysf.cfg.arguments import (
    checkpoint_override_defaults,
    load_from_checkpoint,
    maybe_load_from_checkpoint,
    parse_args,
    parse_full_cfg,
    parse_sf_args,
)
from pysf.cfg.cfg import str2bool as cfg_str2bool
from pysf.cfg.experiment import (
    LOCK_FILENAME,
    ExperimentLock,
    ExperimentLockedError,
    load_config,
    old_experiment_dir,
    prepare_experiment_dir,
    save_config,
)
from pysf.utils import utils
from pysf.utils.attr_dict import AttrDict


def make_cfg(train_dir: Path, *flags: str, experiment: str = "exp"):
    return parse_args(["--env=CartPole-v1", f"--train_dir={train_dir}", f"--experiment={experiment}", *flags])


def start_run(train_dir: Path, *flags: str, experiment: str = "exp") -> AttrDict:
    """What the runner does with the folder: prepare it, then save the configuration."""
    cfg = prepare_experiment_dir(make_cfg(train_dir, *flags, experiment=experiment))
    save_config(cfg)
    return cfg


def folder_files(path: Path) -> List[str]:
    """The folder's files, without the experiment lock (tested on its own)."""
    return sorted(p.name for p in path.iterdir() if p.name != LOCK_FILENAME)


# ---- paths and helpers with Sample Factory's names -----------------------------------------------------------


def test_experiment_paths(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path / "train")
    exp_dir = str(tmp_path / "train" / "exp")
    assert utils.experiment_dir(cfg, mkdir=False) == exp_dir
    assert not os.path.exists(exp_dir)
    assert utils.cfg_file(cfg, mkdir=False) == os.path.join(exp_dir, "config.json")
    assert utils.cfg_file_old(cfg, mkdir=False) == os.path.join(exp_dir, "cfg.json")
    assert utils.summaries_dir(exp_dir, mkdir=False) == os.path.join(exp_dir, ".summary")
    assert not os.path.exists(exp_dir)
    # Sample Factory's defaults create the folders.
    assert utils.experiment_dir(cfg) == exp_dir and os.path.isdir(exp_dir)
    assert experiment_module.experiment_dir is utils.experiment_dir


def test_utils_reexports_and_dir_helpers(tmp_path: Path) -> None:
    assert utils.str2bool is cfg_str2bool
    assert utils.log.name == "rl"
    nested = str(tmp_path / "a" / "b")
    assert utils.ensure_dir_exists(nested) == nested and os.path.isdir(nested)
    assert utils.safe_ensure_dir_exists(nested) == nested
    assert utils.maybe_ensure_dir_exists(str(tmp_path / "c"), mkdir=False) == str(tmp_path / "c")
    assert not os.path.exists(tmp_path / "c")
    (tmp_path / "f.txt").write_text("x")
    utils.remove_if_exists(str(tmp_path / "f.txt"))
    utils.remove_if_exists(str(tmp_path / "f.txt"))
    assert not (tmp_path / "f.txt").exists()
    assert utils.is_module_available("json") and not utils.is_module_available("no_such_module_xyz")
    assert len(utils.get_git_commit_hash()) == 2


def test_init_file_logger_writes_sf_log(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    filename = utils.init_file_logger(cfg)
    try:
        assert filename == str(tmp_path / "exp" / "sf_log.txt")
        assert utils.init_file_logger(cfg) == filename  # no second handler
        assert sum(isinstance(h, logging.FileHandler) for h in utils.log.handlers) == 1
        utils.log.warning("hello from the test")
        for handler in utils.log.handlers:
            handler.flush()
        assert "hello from the test" in Path(filename).read_text()
    finally:
        for handler in list(utils.log.handlers):
            if isinstance(handler, logging.FileHandler):
                utils.log.removeHandler(handler)
                handler.close()
    assert utils.init_file_logger(make_cfg(tmp_path, "--log_to_file=False")) is None


# ---- config.json ---------------------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, "--learning_rate=0.01", "--encoder_mlp_layers", "64", "32", "--seed=3")
    filename = save_config(cfg)
    assert filename == str(tmp_path / "exp" / "config.json")
    loaded = load_config(cfg)
    assert isinstance(loaded, AttrDict)
    assert dict(loaded) == vars(cfg)
    assert loaded.encoder_mlp_layers == [64, 32] and loaded.seed == 3 and loaded.normalize_input_keys is None
    assert loaded.cli_args == {
        "env": "CartPole-v1",
        "train_dir": str(tmp_path),
        "experiment": "exp",
        "learning_rate": 0.01,
        "encoder_mlp_layers": [64, 32],
        "seed": 3,
    }
    # Plain JSON, as Sample Factory's tools expect.
    assert json.loads((tmp_path / "exp" / "config.json").read_text())["learning_rate"] == 0.01


def test_save_config_replaces_the_previous_file(tmp_path: Path) -> None:
    save_config(make_cfg(tmp_path, "--learning_rate=0.01"))
    save_config(make_cfg(tmp_path, "--learning_rate=0.02"))
    assert load_config(make_cfg(tmp_path)).learning_rate == 0.02
    assert folder_files(tmp_path / "exp") == ["config.json"]


def test_save_config_is_atomic(tmp_path: Path) -> None:
    save_config(make_cfg(tmp_path, "--learning_rate=0.01"))
    before = (tmp_path / "exp" / "config.json").read_text()

    bad = make_cfg(tmp_path, "--learning_rate=0.02")
    bad.not_serializable = object()
    with pytest.raises(TypeError, match=r"entries \['not_serializable'\] are not JSON-serializable"):
        save_config(bad)
    assert (tmp_path / "exp" / "config.json").read_text() == before
    assert folder_files(tmp_path / "exp") == ["config.json"]


def test_failed_first_save_leaves_no_file(tmp_path: Path) -> None:
    bad = make_cfg(tmp_path)
    bad.not_serializable = {1, 2}
    with pytest.raises(TypeError):
        save_config(bad)
    assert folder_files(tmp_path / "exp") == []


def test_load_config_errors(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_config(cfg)
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON.*--restart_behavior=restart"):
        load_config(cfg)
    (tmp_path / "exp" / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        load_config(cfg)


# ---- new experiments -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("behavior", ["resume", "restart", "overwrite"])
def test_new_experiment_starts_from_the_command_line(tmp_path: Path, behavior: str) -> None:
    cfg = make_cfg(tmp_path, f"--restart_behavior={behavior}", "--learning_rate=0.01")
    prepared = prepare_experiment_dir(cfg)
    assert isinstance(prepared, AttrDict) and dict(prepared) == vars(cfg)
    assert prepared is not cfg and prepared.encoder_mlp_layers is not cfg.encoder_mlp_layers
    assert os.path.isdir(tmp_path / "exp")
    # config.json is written by save_config, after verification.
    assert folder_files(tmp_path / "exp") == []
    assert not list(tmp_path.glob("exp_old*"))


# ---- resume --------------------------------------------------------------------------------------------------


def test_resume_applies_only_explicit_cli_flags_over_the_saved_config(tmp_path: Path) -> None:
    start_run(tmp_path, "--learning_rate=0.01", "--train_for_env_steps=1000", "--batch_size=512")
    cfg = prepare_experiment_dir(make_cfg(tmp_path, "--train_for_env_steps=5000"))
    assert cfg.learning_rate == 0.01  # saved, not passed now: kept (the default would be 1e-4)
    assert cfg.batch_size == 512
    assert cfg.train_for_env_steps == 5000  # passed now: wins
    assert cfg.command_line.endswith("--train_for_env_steps=5000")
    assert "learning_rate" not in cfg.cli_args and cfg.cli_args["train_for_env_steps"] == 5000


def test_explicit_flag_wins_even_when_it_equals_the_default(tmp_path: Path) -> None:
    start_run(tmp_path, "--learning_rate=0.01")
    assert prepare_experiment_dir(make_cfg(tmp_path, "--learning_rate=0.0001")).learning_rate == 0.0001


def test_resume_without_flags_reproduces_the_saved_config(tmp_path: Path) -> None:
    first = start_run(tmp_path, "--learning_rate=0.01", "--use_rnn=False", "--encoder_mlp_layers", "8")
    resumed = prepare_experiment_dir(make_cfg(tmp_path))
    run_keys = {"command_line", "cli_args"}
    assert {k: v for k, v in resumed.items() if k not in run_keys} == {
        k: v for k, v in first.items() if k not in run_keys
    }


def test_resume_adds_keys_new_in_this_version_and_keeps_unknown_saved_keys(tmp_path: Path) -> None:
    start_run(tmp_path, "--learning_rate=0.01")
    config_path = tmp_path / "exp" / "config.json"
    saved = json.loads(config_path.read_text())
    del saved["inference_backend"]  # a config written before this flag existed
    saved["removed_old_flag"] = 7  # a flag that no longer exists
    config_path.write_text(json.dumps(saved))

    cfg = prepare_experiment_dir(make_cfg(tmp_path, "--inference_backend=python"))
    assert cfg.inference_backend == "python"
    cfg = prepare_experiment_dir(make_cfg(tmp_path))
    assert cfg.inference_backend == "auto" and cfg.removed_old_flag == 7 and cfg.learning_rate == 0.01


def test_resume_adds_script_specific_flags(tmp_path: Path) -> None:
    start_run(tmp_path)
    argv = ["--env=CartPole-v1", f"--train_dir={tmp_path}", "--experiment=exp"]
    parser, _ = parse_sf_args(argv)
    parser.add_argument("--my_env_flag", type=int, default=5)
    cfg = prepare_experiment_dir(parse_full_cfg(parser, argv))
    assert cfg.my_env_flag == 5


def test_resume_keeps_run_identity_of_the_current_run(tmp_path: Path) -> None:
    start_run(tmp_path / "old_place", "--learning_rate=0.01", "--restart_behavior=overwrite")
    os.rename(tmp_path / "old_place", tmp_path / "new_place")
    cfg = make_cfg(tmp_path / "new_place")
    del cfg.cli_args["train_dir"]  # as if the folder was found through the default --train_dir
    resumed = prepare_experiment_dir(cfg)
    assert resumed.learning_rate == 0.01
    assert resumed.train_dir == str(tmp_path / "new_place")  # where it is now, not where it was saved
    assert resumed.restart_behavior == "resume"  # what this run asked for
    assert resumed.git_hash == cfg.git_hash and resumed.command_line == cfg.command_line


def test_resume_saves_the_merged_config(tmp_path: Path) -> None:
    start_run(tmp_path, "--learning_rate=0.01", "--train_for_env_steps=1000")
    start_run(tmp_path, "--train_for_env_steps=5000")
    saved = load_config(make_cfg(tmp_path))
    assert saved.learning_rate == 0.01 and saved.train_for_env_steps == 5000
    assert saved.command_line.endswith("--train_for_env_steps=5000")
    # A third run without flags keeps both.
    cfg = prepare_experiment_dir(make_cfg(tmp_path))
    assert cfg.learning_rate == 0.01 and cfg.train_for_env_steps == 5000


def test_resume_keeps_existing_files(tmp_path: Path) -> None:
    start_run(tmp_path)
    (tmp_path / "exp" / "checkpoint_p0").mkdir()
    (tmp_path / "exp" / "checkpoint_p0" / "checkpoint_000000001_32.pth").write_bytes(b"x")
    prepare_experiment_dir(make_cfg(tmp_path))
    assert (tmp_path / "exp" / "checkpoint_p0" / "checkpoint_000000001_32.pth").exists()


def test_resume_of_a_folder_without_config_starts_from_scratch(tmp_path: Path) -> None:
    (tmp_path / "exp").mkdir()
    cfg = make_cfg(tmp_path, "--learning_rate=0.5")
    prepared = prepare_experiment_dir(cfg)
    assert isinstance(prepared, AttrDict) and dict(prepared) == vars(cfg)


def test_legacy_cfg_json_is_renamed_and_loaded(tmp_path: Path) -> None:
    start_run(tmp_path, "--learning_rate=0.01")
    os.rename(tmp_path / "exp" / "config.json", tmp_path / "exp" / "cfg.json")
    cfg = prepare_experiment_dir(make_cfg(tmp_path))
    assert cfg.learning_rate == 0.01
    assert folder_files(tmp_path / "exp") == ["config.json"]


def test_load_from_checkpoint_functions(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, "--learning_rate=0.2")
    with pytest.raises(FileNotFoundError, match="Could not load saved parameters for experiment exp"):
        load_from_checkpoint(cfg)
    fresh = maybe_load_from_checkpoint(cfg)
    assert isinstance(fresh, AttrDict) and fresh.learning_rate == 0.2
    assert not os.path.exists(tmp_path / "exp")  # looking for the config creates nothing

    save_config(cfg)
    resumed = load_from_checkpoint(make_cfg(tmp_path))
    assert isinstance(resumed, AttrDict) and resumed.learning_rate == 0.2
    assert maybe_load_from_checkpoint(make_cfg(tmp_path)).learning_rate == 0.2


def test_load_from_checkpoint_does_not_modify_the_given_cfg(tmp_path: Path) -> None:
    start_run(tmp_path, "--learning_rate=0.01")
    cfg = make_cfg(tmp_path)
    before = dict(vars(cfg))
    load_from_checkpoint(cfg)
    assert vars(cfg) == before


def test_checkpoint_override_defaults(tmp_path: Path) -> None:
    start_run(tmp_path, "--learning_rate=0.01")
    argv = ["--env=CartPole-v1", f"--train_dir={tmp_path}", "--experiment=exp"]
    parser, partial = parse_sf_args(argv)
    loaded = checkpoint_override_defaults(partial, parser)
    assert loaded.learning_rate == 0.01
    assert parse_full_cfg(parser, argv).learning_rate == 0.01
    assert parse_full_cfg(parser, argv + ["--learning_rate=0.5"]).learning_rate == 0.5


# ---- restart / overwrite -------------------------------------------------------------------------------------


def test_restart_moves_the_old_folder_aside(tmp_path: Path) -> None:
    start_run(tmp_path, "--learning_rate=0.01")
    (tmp_path / "exp" / "marker.txt").write_text("first")

    cfg = start_run(tmp_path, "--restart_behavior=restart")
    assert cfg.learning_rate == 1e-4  # fresh: the saved value is not used
    assert (tmp_path / "exp_old0001" / "marker.txt").read_text() == "first"
    assert load_config(make_cfg(tmp_path, experiment="exp_old0001")).learning_rate == 0.01
    assert folder_files(tmp_path / "exp") == ["config.json"]

    (tmp_path / "exp" / "marker.txt").write_text("second")
    start_run(tmp_path, "--restart_behavior=restart")
    assert (tmp_path / "exp_old0001" / "marker.txt").read_text() == "first"
    assert (tmp_path / "exp_old0002" / "marker.txt").read_text() == "second"


def test_old_experiment_dir_skips_taken_names(tmp_path: Path) -> None:
    exp_dir = str(tmp_path / "exp")
    assert old_experiment_dir(exp_dir) == exp_dir + "_old0001"
    (tmp_path / "exp_old0001").mkdir()
    (tmp_path / "exp_old0002").write_text("a file also takes the name")
    assert old_experiment_dir(exp_dir) == exp_dir + "_old0003"


def test_overwrite_deletes_the_old_folder(tmp_path: Path) -> None:
    start_run(tmp_path, "--learning_rate=0.01")
    (tmp_path / "exp" / "checkpoint_p0").mkdir()
    cfg = prepare_experiment_dir(make_cfg(tmp_path, "--restart_behavior=overwrite"))
    assert cfg.learning_rate == 1e-4
    assert folder_files(tmp_path / "exp") == []
    assert folder_files(tmp_path) == ["exp"]


# ---- invalid folders -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("experiment", ["", ".", "..", "a/../..", "/abs/path"])
def test_experiment_name_must_stay_inside_train_dir(tmp_path: Path, experiment: str) -> None:
    with pytest.raises(ValueError, match="must be a folder name inside --train_dir"):
        prepare_experiment_dir(make_cfg(tmp_path, "--restart_behavior=overwrite", experiment=experiment))
    assert tmp_path.exists()


def test_nested_experiment_names_are_allowed(tmp_path: Path) -> None:
    prepare_experiment_dir(make_cfg(tmp_path, experiment="group/run1"))
    assert (tmp_path / "group" / "run1").is_dir()


def test_experiment_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "exp").write_text("not a folder")
    with pytest.raises(ValueError, match="exists but is not a folder"):
        prepare_experiment_dir(make_cfg(tmp_path))


def test_unknown_restart_behavior(tmp_path: Path) -> None:
    cfg: Any = make_cfg(tmp_path)
    cfg.restart_behavior = "archive"
    with pytest.raises(ValueError, match="Unknown --restart_behavior='archive'"):
        prepare_experiment_dir(cfg)


# ---- the experiment lock ---------------------------------------------------------------------------------------


def test_a_locked_folder_is_neither_overwritten_nor_moved(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    lock = ExperimentLock(str(tmp_path / "exp"))
    prepare_experiment_dir(cfg, lock=lock)
    save_config(cfg)
    assert lock.held
    for behavior in ("overwrite", "restart", "resume"):
        with pytest.raises(ExperimentLockedError, match=r"in use by another run \(this process"):
            prepare_experiment_dir(make_cfg(tmp_path, f"--restart_behavior={behavior}"))
    assert folder_files(tmp_path / "exp") == ["config.json"]
    assert not os.path.exists(old_experiment_dir(str(tmp_path / "exp")))
    lock.release()
    prepare_experiment_dir(make_cfg(tmp_path, "--restart_behavior=overwrite"))  # free again
    assert folder_files(tmp_path / "exp") == []


def test_a_lock_held_by_another_process_names_it_and_dies_with_it(tmp_path: Path) -> None:
    exp_dir = tmp_path / "exp"
    exp_dir.mkdir()
    holder_code = (
        "import sys, time; from pysf.cfg.experiment import ExperimentLock; "
        f"lock = ExperimentLock({str(exp_dir)!r}); lock.acquire(); print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", holder_code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ExperimentLockedError, match=f"pid {holder.pid} on "):
            ExperimentLock(str(exp_dir)).acquire()
    finally:
        holder.kill()
        holder.wait()
    # The kernel released the dead holder's lock: its lock file is stale and is taken over.
    with ExperimentLock(str(exp_dir)) as lock:
        assert lock.held
        assert json.loads((exp_dir / LOCK_FILENAME).read_text())["pid"] == os.getpid()


def test_an_unusable_train_dir_is_one_clear_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(OSError, match="Cannot create the experiment folder .*: Not a directory. Choose a writable --train_dir"):
        prepare_experiment_dir(make_cfg(not_a_folder / "runs"))
