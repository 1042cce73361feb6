"""Building the configuration from the command line, with Sample Factory's two-pass protocol.

A training script does::

    parser, partial_cfg = parse_sf_args(argv, evaluation=False)  # all SF flags, tolerant first pass
    add_my_env_args(partial_cfg.env, parser)                      # script-specific flags ...
    parser.set_defaults(**my_env_defaults)                        # ... and per-env default overrides
    cfg = parse_full_cfg(parser, argv)                            # strict pass + postprocess_args

or simply ``cfg = parse_args()``. The resulting ``argparse.Namespace`` also records how it was produced
(``command_line``, ``cli_args``, ``git_hash``, ``git_repo_name``) so that a resumed experiment can reload its saved
``config.json`` while honouring only the flags that were explicitly passed this time.

Run-time configuration handling lives here as well and operates on the ``Config`` objects produced above:

- ``preprocess_cfg`` / ``verify_cfg``: resolve automatic values and reject inconsistent flag combinations early, with
  a ``ValueError`` that names the flags to change and suggests values (Sample Factory only logs errors and returns
  ``False``);
- ``check_env_name``: an unknown ``--env`` fails with the closest known names;
- ``load_from_checkpoint`` / ``maybe_load_from_checkpoint`` / ``checkpoint_override_defaults``: reload the
  ``config.json`` of an existing experiment (resume), honouring the flags passed explicitly this time.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import difflib
import importlib
import json
import math
import os
import re
import subprocess
import sys
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from pysf.cfg.backends import env_backend_problem, inference_backend_problem
from pysf.cfg.cfg import (
    add_basic_cli_args,
    add_default_env_args,
    add_eval_args,
    add_model_args,
    add_pbt_args,
    add_rl_args,
    add_wandb_args,
)
from pysf.utils.attr_dict import AttrDict
from pysf.utils.utils import cfg_file, cfg_file_old, log

if TYPE_CHECKING:
    from pysf.algo.utils.env_info import EnvInfo

# Same as ``pysf.utils.typing.Config`` (Sample Factory's ``Config``): a parsed Namespace, or an AttrDict
# (e.g. a configuration reloaded from config.json). Both support attribute access to every flag.
Config = Union[argparse.Namespace, AttrDict]

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
    add_basic_cli_args(parser)
    add_rl_args(parser)
    add_model_args(parser)
    add_default_env_args(parser)
    add_wandb_args(parser)
    add_pbt_args(parser)
    if evaluation:
        add_eval_args(parser)
    _mark_not_yet_supported(parser)

    with _required_flags_waived_for_help(parser, argv):
        partial_cfg, _unknown_args = parser.parse_known_args(argv)
    return parser, partial_cfg


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
# Checking a configuration before training
# --------------------------------------------------------------------------------------------------------------

# Integer flags that size buffers or batches; zero or negative values make no sense (and would divide by zero).
_POSITIVE_INT_FLAGS: Tuple[str, ...] = (
    "num_workers",
    "num_envs_per_worker",
    "worker_num_splits",
    "rollout",
    "batch_size",
    "num_batches_per_epoch",
    "num_epochs",
    "num_policies",
)


def auto_recurrence(cfg: Config) -> int:
    """The backpropagation-through-time length that ``--recurrence=-1`` stands for.

    As in Sample Factory: ``--rollout`` for RNN policies and 1 for feed-forward ones. pysf addition: with
    ``--with_vtrace=True`` it is always ``--rollout``, the only value V-trace accepts (Sample Factory would pick 1
    for a feed-forward policy, i.e. V-trace over one-step segments).
    """
    return int(cfg.rollout) if (cfg.use_rnn or getattr(cfg, "with_vtrace", False)) else 1


def preprocess_cfg(cfg: Config, env_info: "EnvInfo") -> Config:
    """Resolve automatic values, then check the configuration with :func:`verify_cfg`.

    ``--recurrence=-1`` becomes :func:`auto_recurrence` (``cfg`` is modified in place).

    Returns:
        ``cfg`` itself (truthy, so Sample Factory style ``if not preprocess_cfg(cfg, env_info): ...`` still works).

    Raises:
        ValueError: the configuration cannot be trained (see :func:`verify_cfg`).
    """
    recurrence_is_auto = cfg.recurrence == -1
    if recurrence_is_auto:
        cfg.recurrence = auto_recurrence(cfg)
        log.debug("Automatically setting recurrence to %d", cfg.recurrence)
    _verify_cfg(cfg, env_info, recurrence_is_auto)
    return cfg


def verify_cfg(cfg: Config, env_info: "EnvInfo") -> bool:
    """Check that the flags describe a configuration pysf can train, before anything is started.

    Every problem found is reported at once in a single ``ValueError`` whose message names the flags to change and
    suggests values. Checks (Sample Factory's, plus pysf's own about its sampler's data layout):

    - size flags (``--num_workers``, ``--num_envs_per_worker``, ``--worker_num_splits``, ``--rollout``,
      ``--batch_size``, ``--num_batches_per_epoch``, ``--num_epochs``, ``--num_policies``) are >= 1, and
      ``--recurrence`` is -1 (automatic) or >= 1;
    - ``--num_envs_per_worker`` >= ``--worker_num_splits`` (pysf) and a multiple of it (SF);
    - ``--normalize_returns`` is incompatible with ``--with_vtrace`` (SF);
    - ``--batch_size`` is a multiple of ``--recurrence`` (pysf: minibatches hold whole BPTT sequences);
    - the dataset of one training iteration, ``batch_size * num_batches_per_epoch``, is a multiple of ``--rollout``
      (pysf trains on whole trajectories; Sample Factory's learner asserts the same);
    - sync mode (``--async_rl=False``): the dataset is a positive multiple of what all workers collect per rollout,
      ``num_workers * num_envs_per_worker * num_agents * rollout // num_policies`` (SF);
    - RNN policies need ``--recurrence`` > 1 (SF) and, in pysf, a ``--rollout`` that is a multiple of it (a BPTT
      sequence must not span two trajectories); V-trace needs ``--recurrence`` == ``--rollout`` (SF);
    - ``--inference_backend=aoti`` is not available yet; ``--env_backend=native`` needs a native env (pysf).

    Warnings are logged (not raised) for async + serial mode, multi-policy setups Sample Factory warns about, and
    ``--recurrence`` > 1 without an RNN.

    A ``--recurrence`` of -1 is checked as the value :func:`preprocess_cfg` would pick; ``cfg`` is not modified.

    Args:
        cfg: the configuration (argparse Namespace or AttrDict).
        env_info: the env's properties; only ``num_agents`` is used.

    Returns:
        ``True`` (Sample Factory's ``verify_cfg`` returns whether the configuration is valid; here an invalid one
        raises instead).

    Raises:
        ValueError: listing every problem found.
    """
    _verify_cfg(cfg, env_info, recurrence_is_auto=cfg.recurrence == -1)
    return True


def _verify_cfg(cfg: Config, env_info: "EnvInfo", recurrence_is_auto: bool) -> None:
    """:func:`verify_cfg`; ``recurrence_is_auto``: ``--recurrence`` was -1 (resolved or not), for the messages."""
    errors: List[str] = []
    num_agents = int(getattr(env_info, "num_agents", 1) or 0)
    recurrence = auto_recurrence(cfg) if cfg.recurrence == -1 else int(cfg.recurrence)

    errors.extend(_backend_errors(cfg))
    errors.extend(not_yet_supported_errors(cfg, num_agents))

    non_positive = [f"--{name}={getattr(cfg, name)}" for name in _POSITIVE_INT_FLAGS if int(getattr(cfg, name)) < 1]
    if non_positive:
        errors.append(f"{', '.join(non_positive)}: these flags must be positive integers (>= 1).")
    if num_agents < 1:
        errors.append(f"The env reports num_agents={num_agents}; an env must have at least one agent.")
    if recurrence < 1:
        errors.append(
            f"--recurrence={cfg.recurrence} is invalid: use -1 (automatic: --rollout for RNN policies, 1 otherwise) "
            f"or a positive backpropagation-through-time length, e.g. --recurrence={cfg.rollout}."
        )

    if cfg.normalize_returns and cfg.with_vtrace:
        # With V-trace the targets depend on the policy being trained and are recomputed on every minibatch, while
        # returns normalization assumes returns computed once per training iteration.
        errors.append(
            "--normalize_returns=True is not supported with --with_vtrace=True (V-trace recomputes its targets on "
            "every minibatch). Set --normalize_returns=False to use V-trace, or --with_vtrace=False to use GAE."
        )

    if not non_positive and num_agents >= 1 and recurrence >= 1:
        errors.extend(_data_layout_errors(cfg, num_agents, recurrence, recurrence_is_auto))
        errors.extend(_recurrence_errors(cfg, recurrence))

    _log_cfg_warnings(cfg, recurrence)

    if errors:
        raise ValueError(_format_cfg_errors(errors))


def check_env_name(env_name: str) -> None:
    """Fail early, with suggestions, when ``--env`` names no env pysf can create.

    Known names: envs registered with ``register_env``, native (C++) envs, and gymnasium ids (as
    ``gymnasium.make`` resolves them: exact ids, unversioned names meaning the latest version, and
    ``"module:EnvId"`` which imports ``module`` first).

    Raises:
        ValueError: ``"Unknown env 'CartPol-v1'. Did you mean: CartPole-v1, CartPole-v0?"`` followed by the
            registered and native env names.
    """
    from pysf.algo.utils.context import global_env_registry

    registered = sorted(global_env_registry())
    if env_name in registered:
        return
    native = _native_env_names()
    if env_name in native:
        return

    gym_id = env_name
    if ":" in env_name:
        # gymnasium.make("package.module:EnvId") imports the module, which registers the env.
        module_name, gym_id = env_name.split(":", 1)
        try:
            importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(
                f"Unknown env {env_name!r}: could not import module {module_name!r} ({exc}). The 'module:EnvId' form "
                f"imports the module that registers the gymnasium env; check that it is installed."
            ) from exc

    gym_ids = _gymnasium_env_ids()
    if gym_id in gym_ids or _is_unversioned_gymnasium_id(gym_id, gym_ids):
        return

    candidates = list(dict.fromkeys([*registered, *native, *gym_ids]))
    matches = close_matches(gym_id, candidates, n=5, cutoff=0.7)
    message = f"Unknown env {env_name!r}."
    if matches:
        message += f" Did you mean: {', '.join(matches)}?"
    message += (
        "\n--env must name an env registered with pysf.envs.env_utils.register_env() (register it before "
        "parsing/training), a native pysf env, or a gymnasium id."
        f"\nRegistered envs: {', '.join(registered) if registered else '(none)'}"
        f"\nNative envs: {', '.join(native) if native else '(none)'}"
    )
    raise ValueError(message)


def close_matches(name: str, candidates: Iterable[str], n: int = 5, cutoff: float = 0.6) -> List[str]:
    """The (at most ``n``) ``candidates`` most similar to ``name``, best first, ignoring letter case."""
    by_lower: Dict[str, List[str]] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), []).append(candidate)
    matches: List[str] = []
    for lowered in difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=cutoff):
        matches.extend(by_lower[lowered])
    return matches[:n]


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


def _backend_errors(cfg: Config) -> List[str]:
    """Problems with the pysf-specific backend flags (``--inference_backend``, ``--env_backend``)."""
    errors: List[str] = []
    inference_problem = inference_backend_problem(getattr(cfg, "inference_backend", "auto"))
    if inference_problem is not None:
        errors.append(inference_problem)

    env_backend = getattr(cfg, "env_backend", "auto")
    if env_backend == "native":
        native = _native_env_names()
        if cfg.env not in native:
            similar = close_matches(str(cfg.env), native, n=1)
            did_you_mean = f" Did you mean --env={similar[0]}?" if similar else ""
            available = ", ".join(native) if native else "(none: the compiled extension pysf._C could not be loaded)"
            errors.append(
                f"--env_backend=native requires an env with a native (C++) implementation, and --env={cfg.env} has "
                f"none.{did_you_mean} Native envs: {available}. Use --env_backend=auto (the native implementation "
                f"when one exists, the Python/gymnasium env otherwise) or --env_backend=gym."
            )
    elif env_backend_problem(env_backend) is not None:
        errors.append(env_backend_problem(env_backend))
    return errors


# Flags whose Sample Factory default is the only value pysf implements so far, and what a user should know.
_NOT_YET_SUPPORTED: Tuple[Tuple[str, Any, str], ...] = (
    ("num_policies", 1, "pysf trains one policy per experiment for now (multi-policy training, self-play and PBT are "
     "planned). Use --num_policies=1."),
    ("with_pbt", False, "population-based training is not implemented in pysf yet (it needs several policies). "
     "Use --with_pbt=False."),
    ("batched_sampling", False, "pysf has no batched (vectorized-env) sampling mode yet; its native sampler already "
     "batches inference over all envs of a split. Use --batched_sampling=False with a make_env_func that returns one "
     "env."),
    ("actor_worker_gpus", [], "pysf's env workers run on the CPU only for now. Leave --actor_worker_gpus empty."),
    ("decorrelate_experience_max_seconds", 0, "pysf's workers do not idle at start-up to spread out experience yet "
     "(its --decorrelate_envs_on_one_worker warm-up is available). Use --decorrelate_experience_max_seconds=0."),
    ("algo", "APPO", "APPO is the only algorithm (as in Sample Factory). Use --algo=APPO."),
)


def _mark_not_yet_supported(parser: argparse.ArgumentParser) -> None:
    """``--help`` says which values pysf does not implement yet (from ``_NOT_YET_SUPPORTED``)."""
    supported = {name: value for name, value, _ in _NOT_YET_SUPPORTED}
    for action in parser._actions:
        if action.dest in supported and action.help and "[pysf:" not in action.help:
            action.help += f" [pysf: only {supported[action.dest]!r} for now; other values stop before training]"


def not_yet_supported_errors(cfg: Config, num_agents: int = 1) -> List[str]:
    """What the configuration asks for that pysf cannot do yet (each with what to do instead).

    pysf accepts every Sample Factory flag; those whose other values it does not implement stop here rather
    than being ignored.
    """
    errors: List[str] = []
    for name, supported, explanation in _NOT_YET_SUPPORTED:
        value = getattr(cfg, name, supported)
        if value != supported and not (isinstance(supported, list) and not value):
            errors.append(f"--{name}={value}: {explanation}")
    if num_agents > 1:
        errors.append(
            f"The env has num_agents={num_agents}: multi-agent envs are not supported by pysf yet (planned). Train a "
            f"single-agent env (num_agents=1)."
        )
    if cfg.device == "gpu" and _cuda_available():
        errors.append(
            "--device=gpu: pysf's learner and inference run on the CPU for now (the GPU path is planned), and this "
            "machine has a GPU, so training would not be where you asked. Use --device=cpu."
        )
    if getattr(cfg, "episode_counter", False) and _uses_native_env(cfg):
        errors.append(
            "--episode_counter=True wraps each Python env in EpisodeCounterWrapper; native (C++) envs cannot be "
            "wrapped. Add --env_backend=gym to run the gymnasium version of the env."
        )
    return errors


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def _uses_native_env(cfg: Config) -> bool:
    try:
        from pysf.envs.native import use_native_env

        return bool(use_native_env(cfg))
    except (ImportError, ValueError):
        return False


def _data_layout_errors(cfg: Config, num_agents: int, recurrence: int, recurrence_is_auto: bool) -> List[str]:
    """Problems with how envs are split and how samples are batched (all sizes are known to be >= 1)."""
    errors: List[str] = []
    envs, splits, rollout = int(cfg.num_envs_per_worker), int(cfg.worker_num_splits), int(cfg.rollout)
    batch_size, num_batches = int(cfg.batch_size), int(cfg.num_batches_per_epoch)
    num_workers, num_policies = int(cfg.num_workers), int(cfg.num_policies)
    dataset = batch_size * num_batches
    dataset_desc = f"--batch_size={batch_size} * --num_batches_per_epoch={num_batches} = {dataset} samples"

    if envs < splits:
        alt_splits = _largest_divisor_at_most(envs, splits)
        errors.append(
            f"--num_envs_per_worker={envs} is less than --worker_num_splits={splits}: each split of a worker steps "
            f"its own group of envs, so every split needs at least one env. Use --num_envs_per_worker={splits} "
            f"(or another multiple of {splits}), or --worker_num_splits={alt_splits}"
            + (" (no double buffering)." if alt_splits == 1 else ".")
        )
    elif envs % splits != 0:
        lower, upper = envs // splits * splits, (envs // splits + 1) * splits
        alt_splits = _largest_divisor_at_most(envs, splits)
        errors.append(
            f"--num_envs_per_worker={envs} must be a multiple of --worker_num_splits={splits}: every split steps the "
            f"same number of envs (for double-buffered sampling, the default --worker_num_splits=2, use an even "
            f"number of envs per worker). Use --num_envs_per_worker={lower} or --num_envs_per_worker={upper}, or "
            f"--worker_num_splits={alt_splits}."
        )

    sync = not cfg.async_rl
    # Sample Factory's formula (integer division by the number of policies).
    samples_per_rollout = num_workers * envs * num_agents * rollout // num_policies
    # The dataset must be a multiple of this for every dataset constraint below to hold. (In async mode the
    # runner assembles batches from whole trajectories of any number of sampler blocks.)
    dataset_multiple = rollout
    if sync and samples_per_rollout > 0:
        dataset_multiple = _lcm(dataset_multiple, samples_per_rollout)

    def batch_hint() -> str:
        return _batch_size_hint(batch_size, num_batches, recurrence, dataset_multiple)

    if batch_size % recurrence != 0:
        auto_note = ""
        if recurrence_is_auto:
            auto_note = " (--recurrence=-1 stands for --rollout with RNN policies and V-trace)"
        errors.append(
            f"--batch_size={batch_size} must be a multiple of --recurrence={recurrence}{auto_note}: the learner cuts "
            f"minibatches into sequences of {recurrence} consecutive steps for backpropagation through time. "
            f"{batch_hint()}"
        )

    sync_error = sync and (samples_per_rollout <= 0 or dataset % samples_per_rollout != 0)
    if sync_error:
        ratio = f"{dataset / samples_per_rollout:g}" if samples_per_rollout > 0 else "undefined"
        workers_hint = ""
        for workers in range(num_workers - 1, 0, -1):
            per_rollout = workers * envs * num_agents * rollout // num_policies
            if per_rollout > 0 and dataset % per_rollout == 0:
                workers_hint = f", or --num_workers={workers}"
                break
        errors.append(
            "In sync mode (--async_rl=False) pysf alternates between collecting experience and training on it, so "
            "that all experience comes from the current policy (no policy lag). The sampler collects whole rollouts "
            "of all envs at once, so the dataset of one training iteration must be a positive multiple of what all "
            "workers collect per rollout:\n"
            f"samples collected per rollout by all workers: --num_workers={num_workers} * "
            f"--num_envs_per_worker={envs} * num_agents={num_agents} * --rollout={rollout} // "
            f"--num_policies={num_policies} = {samples_per_rollout}\n"
            f"samples per training iteration: --num_batches_per_epoch={num_batches} * --batch_size={batch_size} = "
            f"{dataset}\n"
            f"ratio: {ratio} (must be a positive integer)\n"
            "The easiest option is async mode: --async_rl=True. Otherwise change the number of workers, envs per "
            f"worker, rollout or batch size. {batch_hint()[:-1]}{workers_hint}."
        )
    elif dataset % rollout != 0:
        errors.append(
            f"The dataset of one training iteration ({dataset_desc}) must be a multiple of --rollout={rollout}: "
            f"pysf trains on whole trajectories of {rollout} steps. {batch_hint()}"
        )
    return errors


def _recurrence_errors(cfg: Config, recurrence: int) -> List[str]:
    """Problems with ``--recurrence`` for RNN policies and V-trace (``recurrence`` >= 1 is the resolved value)."""
    errors: List[str] = []
    rollout = int(cfg.rollout)
    if cfg.use_rnn and recurrence <= 1:
        errors.append(
            f"--recurrence={cfg.recurrence} must be > 1 to train an RNN policy (--use_rnn=True): it is the number of "
            f"steps backpropagated through time. Recommended: --recurrence={rollout} (= --rollout) or --recurrence=-1 "
            f"(automatic); or --use_rnn=False for a feed-forward policy."
        )
    if cfg.with_vtrace and recurrence != rollout:
        errors.append(
            f"V-trace (--with_vtrace=True) needs --recurrence equal to --rollout, as it is computed over whole "
            f"trajectories; got --recurrence={recurrence} and --rollout={rollout}. Use --recurrence={rollout} or "
            f"--recurrence=-1 (automatic)."
        )
    elif cfg.use_rnn and recurrence > 1 and rollout % recurrence != 0:
        divisor = _largest_divisor_at_most(rollout, recurrence)
        alternatives = f"--recurrence={divisor} or " if 1 < divisor != rollout else ""
        errors.append(
            f"--rollout={rollout} must be a multiple of --recurrence={recurrence} for RNN policies: a "
            f"backpropagation-through-time sequence must not span two trajectories (it would carry one env's RNN "
            f"state into another env's steps). Use {alternatives}--recurrence={rollout}, or "
            f"--rollout={(rollout // recurrence + 1) * recurrence}."
        )
    return errors


def _log_cfg_warnings(cfg: Config, recurrence: int) -> None:
    """Sample Factory's configuration warnings (legal but probably unintended settings)."""
    if cfg.async_rl and cfg.serial_mode:
        log.warning(
            "In serial mode all components run on the same process. Only use async_rl and serial mode together for "
            "debugging."
        )
    if cfg.num_policies > 1 and cfg.batched_sampling:
        log.warning(
            "In batched mode we're using a single policy per worker which does not allow us to use multiple different "
            "policies in the same env."
        )
    if not cfg.async_rl and cfg.num_policies > 1:
        log.warning(
            "Sync mode is not fully tested with multi-policy training. Use at your own risk. Probably requires a "
            "deterministic policy to agent mapping to guarantee that we always collect the same amount of experience "
            "per policy."
        )
    if not cfg.use_rnn and recurrence > 1 and not getattr(cfg, "with_vtrace", False):
        log.warning(
            "--recurrence=%d is set but --use_rnn=False. Consider --recurrence=1 (or -1, automatic) for maximum "
            "performance.",
            recurrence,
        )


def _format_cfg_errors(errors: Sequence[str]) -> str:
    """One message for all problems: a bulleted list, continuation lines indented under their bullet."""
    bullets = ["- " + error.replace("\n", "\n  ") for error in errors]
    noun = "problem" if len(errors) == 1 else "problems"
    return f"Invalid configuration ({len(errors)} {noun}):\n" + "\n".join(bullets)


def _batch_size_hint(batch_size: int, num_batches: int, recurrence: int, dataset_multiple: int) -> str:
    """Concrete ``--batch_size`` / ``--num_batches_per_epoch`` values that satisfy every batch-size constraint:
    ``batch_size`` a multiple of ``recurrence`` and ``batch_size * num_batches`` a multiple of
    ``dataset_multiple``."""
    batch_step = _lcm(recurrence, dataset_multiple // math.gcd(dataset_multiple, num_batches))
    below, above = batch_size // batch_step * batch_step, -(-batch_size // batch_step) * batch_step
    batch_options = [f"--batch_size={value}" for value in sorted({below, above}) if value > 0 and value != batch_size]
    options = [" or ".join(batch_options)] if batch_options else []
    if batch_size % recurrence == 0:
        batches_step = dataset_multiple // math.gcd(dataset_multiple, batch_size)
        batches = -(-num_batches // batches_step) * batches_step
        if batches != num_batches:
            options.append(f"--num_batches_per_epoch={batches}")
    return f"For example {', or '.join(options)}." if options else ""


def _lcm(a: int, b: int) -> int:
    return a * b // math.gcd(a, b)


def _largest_divisor_at_most(n: int, limit: int) -> int:
    """The largest divisor of ``n`` (>= 1) that is <= ``limit``."""
    for candidate in range(min(n, limit), 0, -1):
        if n % candidate == 0:
            return candidate
    return 1


def _native_env_names() -> List[str]:
    """Native env names, or none when the compiled extension is unavailable."""
    try:
        from pysf.envs.native import native_env_names

        return list(native_env_names())
    except (ImportError, AttributeError, RuntimeError, OSError):
        return []


def _gymnasium_env_ids() -> List[str]:
    """Every id in gymnasium's registry (none when gymnasium is missing)."""
    try:
        import gymnasium
    except ImportError:
        return []
    return list(gymnasium.envs.registry.keys())


_VERSION_SUFFIX = re.compile(r"-v\d+$")


def _is_unversioned_gymnasium_id(name: str, gym_ids: Sequence[str]) -> bool:
    """Whether ``name`` has no ``-vN`` suffix and some version of it is registered (gymnasium.make then picks the
    latest version)."""
    if _VERSION_SUFFIX.search(name):
        return False
    return any(_VERSION_SUFFIX.sub("", gym_id) == name for gym_id in gym_ids)
