"""Building the configuration from the command line, with Sample Factory's two-pass protocol.

A training script does::

    parser, partial_cfg = parse_sf_args(argv, evaluation=False)  # all SF flags, tolerant first pass
    add_my_env_args(partial_cfg.env, parser)                      # script-specific flags ...
    parser.set_defaults(**my_env_defaults)                        # ... and per-env default overrides
    cfg = parse_full_cfg(parser, argv)                            # strict pass + postprocess_args

or simply ``cfg = parse_args()``. The resulting ``argparse.Namespace`` also records how it was produced
(``command_line``, ``cli_args``, ``git_hash``, ``git_repo_name``) so that a resumed experiment can reload its saved
``config.json`` while honouring only the flags that were explicitly passed this time.

``load_from_checkpoint`` / ``maybe_load_from_checkpoint`` / ``checkpoint_override_defaults`` reload the
``config.json`` of an existing experiment (resume), honouring the flags passed explicitly this time.

The checks of a configuration (``preprocess_cfg``, ``verify_cfg``, ``check_env_name``, ...) live in
``pysf.cfg.verify``; they are re-exported here, where Sample Factory has them.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import json
import os
import subprocess
import sys
from typing import Any, Dict, FrozenSet, Iterator, List, Optional, Tuple, Union

from pysf.cfg.cfg import (
    add_basic_cli_args,
    add_default_env_args,
    add_eval_args,
    add_model_args,
    add_pbt_args,
    add_rl_args,
    add_wandb_args,
)

# Re-exported: Sample Factory's users import preprocess_cfg / verify_cfg from here, pysf's users the others.
from pysf.cfg.verify import (  # noqa: F401
    auto_recurrence,
    check_env_name,
    close_matches,
    mark_not_yet_supported,
    not_yet_supported_errors,
    preprocess_cfg,
    verify_cfg,
)
from pysf.utils.attr_dict import AttrDict
from pysf.utils.typing import Config
from pysf.utils.utils import cfg_file, cfg_file_old, log

# Recorded in cfg.git_hash / cfg.git_repo_name when git information is unavailable.
UNKNOWN_GIT_INFO = "unknown"
_GIT_TIMEOUT_SECONDS = 5.0


def parse_sf_args(
    argv: Optional[List[str]] = None, evaluation: bool = False
) -> Tuple[argparse.ArgumentParser, argparse.Namespace]:
    """Create the parser with every Sample Factory flag and parse the flags it already knows.

    The first pass uses ``parse_known_args`` so that flags defined later by the calling script (env-specific
    arguments) do not cause errors yet; the script can inspect the partial result (e.g. ``partial.env``), add its
    own arguments and ``set_defaults`` on the returned parser, then call :func:`parse_full_cfg`.

    Args:
        argv: command-line arguments without the program name; ``None`` means ``sys.argv[1:]``.
        evaluation: also add the evaluation-only flags (``add_eval_args``), for enjoy/eval scripts.

    Returns:
        ``(parser, partial_cfg)``.
    """
    argv = _resolve_argv(argv)

    # add_help=False: SF defines -h/--help itself, so help is printed only after the script added its own flags.
    parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter, add_help=False)
    add_sf_args(parser, evaluation=evaluation)
    mark_not_yet_supported(parser)

    with _required_flags_waived_for_help(parser, argv):
        partial_cfg, _unknown_args = parser.parse_known_args(argv)
    return parser, partial_cfg


def add_sf_args(parser: argparse.ArgumentParser, evaluation: bool = False, env_args: bool = True) -> None:
    """Every Sample Factory flag group, in Sample Factory's order: basic, RL, model, env, W&B, PBT, evaluation.

    Args:
        parser: the parser to extend.
        evaluation: also the evaluation-only flags (``add_eval_args``).
        env_args: also the env group (``add_default_env_args``).
    """
    add_basic_cli_args(parser)
    add_rl_args(parser)
    add_model_args(parser)
    if env_args:
        add_default_env_args(parser)
    add_wandb_args(parser)
    add_pbt_args(parser)
    if evaluation:
        add_eval_args(parser)


@functools.lru_cache(maxsize=1)
def trainer_flag_names() -> FrozenSet[str]:
    """The destinations of every Sample Factory flag outside the env group (evaluation's included): the flags of
    the trainer, which do not shape the env."""
    parser = argparse.ArgumentParser(add_help=False)
    add_sf_args(parser, evaluation=True, env_args=False)
    return frozenset(action.dest for action in parser._actions)


def parse_full_cfg(parser: argparse.ArgumentParser, argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Strictly parse ``argv`` with the (possibly extended) parser and post-process the result.

    Unknown flags and invalid values are argparse errors (message on stderr, exit status 2). ``--help`` prints the
    help of every flag, including the script's own, and exits with status 0.

    Args:
        parser: the parser returned by :func:`parse_sf_args`, after the script added its arguments/defaults.
        argv: command-line arguments without the program name; ``None`` means ``sys.argv[1:]``.

    Returns:
        The final configuration (see :func:`postprocess_args` for the extra fields).
    """
    argv = _resolve_argv(argv)
    with _required_flags_waived_for_help(parser, argv):
        cfg = parser.parse_args(argv)
    return postprocess_args(cfg, argv, parser)


def postprocess_args(
    args: argparse.Namespace, argv: List[str], parser: argparse.ArgumentParser
) -> argparse.Namespace:
    """Finish a configuration produced by ``parser.parse_args(argv)``.

    Separate from :func:`parse_full_cfg` so that code embedding pysf in its own argument handling can call it.

    - ``--help``: print the full help and exit with status 0;
    - ``command_line``: ``argv`` joined by spaces;
    - ``cli_args``: dict of only the flags explicitly given in ``argv`` (with their parsed values), which are the
      ones allowed to override a saved configuration when an experiment is resumed;
    - ``git_hash`` / ``git_repo_name``: commit and ``origin`` URL of the git repository in the current directory,
      or ``"unknown"``.

    Returns:
        ``args``, modified in place.
    """
    if getattr(args, "help", False):
        parser.print_help()
        sys.exit(0)

    # argparse hands out the very list object given as default, so two configurations (or a configuration and the
    # parser) would share e.g. actor_worker_gpus; copy so that mutating one configuration cannot leak elsewhere.
    for name, value in vars(args).items():
        if isinstance(value, list):
            setattr(args, name, list(value))

    args.command_line = " ".join(argv)
    args.cli_args = explicit_cli_args(parser, argv)
    args.git_hash, args.git_repo_name = git_commit_hash_and_repo_name()
    return args


def explicit_cli_args(parser: argparse.ArgumentParser, argv: List[str]) -> Dict[str, Any]:
    """Return ``{dest: value}`` for exactly the flags given in ``argv``, ignoring every default.

    A flag's value can never be ``None`` when it comes from the command line, so re-parsing with all defaults
    (argument defaults and ``set_defaults`` ones) replaced by ``None`` leaves non-``None`` values only for the flags
    that were actually passed. A copy of the parser is used so the caller's defaults stay untouched.
    """
    parser_without_defaults = copy.deepcopy(parser)
    for action in parser_without_defaults._actions:
        if action.default is not argparse.SUPPRESS:
            action.default = None
    parser_without_defaults.set_defaults(**{name: None for name in parser_without_defaults._defaults})

    explicit = parser_without_defaults.parse_args(argv)
    return {name: value for name, value in vars(explicit).items() if value is not None}


def parse_args(argv: Optional[List[str]] = None, evaluation: bool = False) -> argparse.Namespace:
    """One-call configuration for scripts without extra flags: :func:`parse_sf_args` then :func:`parse_full_cfg`.

    Args:
        argv: command-line arguments without the program name; ``None`` means ``sys.argv[1:]``.
        evaluation: also accept the evaluation-only flags.
    """
    parser, _partial_cfg = parse_sf_args(argv, evaluation=evaluation)
    return parse_full_cfg(parser, argv)


def default_cfg(algo: str = "APPO", env: str = "env", experiment: str = "test") -> argparse.Namespace:
    """A complete configuration with every default value (handy in tests)."""
    argv = [f"--algo={algo}", f"--env={env}", f"--experiment={experiment}"]
    parser, _partial_cfg = parse_sf_args(argv)
    return parse_full_cfg(parser, argv)


def cfg_dict(cfg: Union[Config, Dict[str, Any]]) -> AttrDict:
    """The configuration as an ``AttrDict`` (a new mapping; values are not copied)."""
    if isinstance(cfg, dict):
        return AttrDict(cfg)
    return AttrDict(vars(cfg))


def cfg_str(cfg: Union[Config, Dict[str, Any]]) -> str:
    """Human-readable configuration: one ``name=value`` line per entry, in definition order."""
    return "\n".join(f"{name}={value}" for name, value in cfg_dict(cfg).items())


def git_commit_hash_and_repo_name() -> Tuple[str, str]:
    """``(commit hash, origin remote URL)`` of the git repository containing the current directory.

    Best effort and silent: each part is ``"unknown"`` when git is missing, the directory is not a repository,
    there is no ``origin`` remote, or git does not answer in time.
    """
    return _run_git("rev-parse", "HEAD"), _run_git("config", "--get", "remote.origin.url")


# --------------------------------------------------------------------------------------------------------------
# Resuming: reloading the saved configuration of an existing experiment
# --------------------------------------------------------------------------------------------------------------

# Entries that describe the current run (how and where it was started) rather than the experiment: when an
# experiment is resumed they keep the current values instead of the saved ones. train_dir/experiment are how the
# folder was found (it may have been moved since), restart_behavior is what this run was asked to do.
RUN_SPECIFIC_KEYS: Tuple[str, ...] = (
    "command_line",
    "cli_args",
    "git_hash",
    "git_repo_name",
    "train_dir",
    "experiment",
    "restart_behavior",
)


def load_from_checkpoint(cfg: Config) -> AttrDict:
    """The saved configuration of the experiment ``cfg`` points to, updated for this run.

    ``<train_dir>/<experiment>/config.json`` is loaded (a legacy ``cfg.json`` is renamed to ``config.json`` first,
    as Sample Factory does), then:

    - only the flags passed explicitly on this command line (``cfg.cli_args``) override the saved values, so e.g.
      a saved ``learning_rate`` survives a resume that does not pass ``--learning_rate``;
    - keys missing from the saved file (flags added in a newer version, script-specific flags) get their current
      values;
    - the entries of :data:`RUN_SPECIFIC_KEYS` (``command_line``, ``cli_args``, git info, ``train_dir``,
      ``experiment``, ``restart_behavior``) come from this run.

    Returns:
        A new ``AttrDict``; ``cfg`` is not modified.

    Raises:
        FileNotFoundError: there is no saved configuration (wrong ``--experiment`` or ``--train_dir``?).
        ValueError: the saved configuration is not a valid JSON object.
    """
    loaded_cfg = _read_saved_config(cfg)
    current = cfg_dict(cfg)

    cli_args = current.get("cli_args") or {}
    for key, value in cli_args.items():
        if key not in loaded_cfg or loaded_cfg[key] != value:
            log.debug("Overriding arg %r with value %r passed from command line", key, value)
        loaded_cfg[key] = copy.deepcopy(value)

    for key, value in current.items():
        if key not in loaded_cfg:
            log.debug("Adding new argument %r=%r that is not in the saved config file!", key, value)
            loaded_cfg[key] = copy.deepcopy(value)

    for key in RUN_SPECIFIC_KEYS:
        if key in current:
            loaded_cfg[key] = copy.deepcopy(current[key])
    return loaded_cfg


def _read_saved_config(cfg: Config) -> dict:
    """The experiment's saved ``config.json`` (a legacy ``cfg.json`` is renamed first)."""
    filename = cfg_file(cfg, mkdir=False)
    rename_legacy_config(cfg)
    if not os.path.isfile(filename):
        raise FileNotFoundError(
            f"Could not load saved parameters for experiment {cfg.experiment} (file {filename} not found). Check "
            f"that you have the correct experiment name and --train_dir is set correctly."
        )
    loaded_cfg = read_config_file(filename)
    log.warning("Loading existing experiment configuration from %s", filename)
    return loaded_cfg


def maybe_load_from_checkpoint(cfg: Config) -> AttrDict:
    """:func:`load_from_checkpoint` when the experiment has a saved configuration, else a copy of ``cfg``.

    Always returns a new ``AttrDict`` (as Sample Factory does), so callers get one configuration type either way.
    """
    if not os.path.isfile(cfg_file(cfg, mkdir=False)) and not os.path.isfile(cfg_file_old(cfg, mkdir=False)):
        log.warning("Saved parameter configuration for experiment %s not found!", cfg.experiment)
        log.warning("Starting experiment from scratch!")
        return AttrDict(copy.deepcopy(dict(cfg_dict(cfg))))
    return load_from_checkpoint(cfg)


def checkpoint_override_defaults(cfg: Config, parser: argparse.ArgumentParser) -> AttrDict:
    """Make the saved configuration of the experiment the parser's defaults (Sample Factory's helper for scripts
    that re-parse with a checkpoint's settings, e.g. evaluation); returns the saved configuration.

    Raises:
        FileNotFoundError: there is no saved configuration.
    """
    loaded_cfg = _read_saved_config(cfg)
    parser.set_defaults(**loaded_cfg)
    return loaded_cfg


def rename_legacy_config(cfg: Config) -> bool:
    """Rename a legacy ``cfg.json`` (Sample Factory < 2.0.2) to ``config.json`` if only the former exists.

    Returns:
        Whether a file was renamed.
    """
    filename, legacy_filename = cfg_file(cfg, mkdir=False), cfg_file_old(cfg, mkdir=False)
    if os.path.isfile(filename) or not os.path.isfile(legacy_filename):
        return False
    log.warning("Loading legacy config file %s instead of %s", legacy_filename, filename)
    os.replace(legacy_filename, filename)
    return True


def read_config_file(filename: str) -> AttrDict:
    """A saved configuration (a JSON object) as an ``AttrDict``.

    Raises:
        ValueError: the file is not valid JSON or does not hold an object.
    """
    try:
        with open(filename, "r") as json_file:
            params = json.load(json_file)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"Saved configuration {filename} is not valid JSON ({exc}). Fix or delete it, or start over with "
            f"--restart_behavior=restart (keeps the old folder) or --restart_behavior=overwrite."
        ) from exc
    if not isinstance(params, dict):
        raise ValueError(f"Saved configuration {filename} must hold a JSON object, found {type(params).__name__}.")
    return AttrDict(params)


# --------------------------------------------------------------------------------------------------------------
# Private helpers
# --------------------------------------------------------------------------------------------------------------


def _resolve_argv(argv: Optional[List[str]]) -> List[str]:
    """``argv`` as a list, defaulting to this process's command-line arguments."""
    return sys.argv[1:] if argv is None else list(argv)


def _help_requested(argv: List[str]) -> bool:
    """Whether ``-h`` or ``--help`` appears among the options of ``argv`` (arguments after ``--`` do not count)."""
    # A throw-away parser handles the "--" separator and "--flag=value" forms the same way the real one does.
    help_parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    help_parser.add_argument("-h", "--help", action="store_true")
    try:
        known, _rest = help_parser.parse_known_args(argv)
    except argparse.ArgumentError:
        # e.g. "--help=x": leave the error message to the real parser.
        return False
    return bool(known.help)


@contextlib.contextmanager
def _required_flags_waived_for_help(parser: argparse.ArgumentParser, argv: List[str]) -> Iterator[None]:
    """While parsing ``--help``, do not insist on required flags such as ``--env``.

    Otherwise ``train.py --help`` would fail with "the following arguments are required: --env" instead of showing
    the help. The parser's ``required`` settings are restored afterwards.
    """
    if not _help_requested(argv):
        yield
        return

    waived = [action for action in parser._actions if action.required]
    for action in waived:
        action.required = False
    try:
        yield
    finally:
        for action in waived:
            action.required = True


def _run_git(*git_args: str) -> str:
    """stdout of ``git <git_args>`` in the current directory, or ``"unknown"`` on any failure (never raises)."""
    try:
        completed = subprocess.run(
            ["git", *git_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=_GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN_GIT_INFO
    output = completed.stdout.strip()
    return output if completed.returncode == 0 and output else UNKNOWN_GIT_INFO
