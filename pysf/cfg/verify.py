"""Checking a configuration before training (Sample Factory's ``preprocess_cfg`` / ``verify_cfg``, and more).

- ``preprocess_cfg`` / ``verify_cfg``: resolve automatic values and reject inconsistent flag combinations early, with
  a ``ValueError`` that names the flags to change and suggests values (Sample Factory only logs errors and returns
  ``False``);
- ``not_yet_supported_errors``: flags whose other values pysf does not implement yet (``--help`` marks them:
  ``mark_not_yet_supported``);
- ``check_env_name``: an unknown ``--env`` fails with the closest known names.

Sample Factory has these in ``cfg.arguments``; ``pysf.cfg.arguments`` re-exports them, so both imports work.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import math
import re
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Sequence, Tuple

from pysf.cfg.backends import env_backend_problem, inference_backend_problem
from pysf.utils.typing import Config
from pysf.utils.utils import log

if TYPE_CHECKING:
    from pysf.algo.utils.env_info import EnvInfo

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
    errors.extend(not_yet_supported_errors(cfg))

    non_positive = [f"--{name}={getattr(cfg, name)}" for name in _POSITIVE_INT_FLAGS if int(getattr(cfg, name)) < 1]
    if non_positive:
        errors.append(f"{', '.join(non_positive)}: these flags must be positive integers (>= 1).")
    if int(cfg.torch_threads) < 0:
        errors.append(f"--torch_threads={cfg.torch_threads}: use a number of threads, or 0 for the automatic choice.")
    if num_agents < 1:
        errors.append(f"The env reports num_agents={num_agents}; an env must have at least one agent.")
    if num_agents > 1 and getattr(cfg, "episode_counter", False):
        errors.append(
            f"--episode_counter=True wraps each single-agent env in EpisodeCounterWrapper; this env has "
            f"num_agents={num_agents}. Use --episode_counter=False."
        )
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

    errors.extend(_frozen_policy_errors(cfg))
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
# Private helpers
# --------------------------------------------------------------------------------------------------------------


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
    ("actor_worker_gpus", [], "pysf's env workers run on the CPU only for now. Leave --actor_worker_gpus empty."),
    ("decorrelate_experience_max_seconds", 0, "pysf's workers do not idle at start-up to spread out experience yet "
     "(its --decorrelate_envs_on_one_worker warm-up is available). Use --decorrelate_experience_max_seconds=0."),
    ("algo", "APPO", "APPO is the only algorithm (as in Sample Factory). Use --algo=APPO."),
)


def mark_not_yet_supported(parser: argparse.ArgumentParser) -> None:
    """``--help`` says which values pysf does not implement yet (from ``_NOT_YET_SUPPORTED``)."""
    supported = {name: value for name, value, _ in _NOT_YET_SUPPORTED}
    for action in parser._actions:
        if action.dest in supported and action.help and "[pysf:" not in action.help:
            action.help += f" [pysf: only {supported[action.dest]!r} for now; other values stop before training]"


def not_yet_supported_errors(cfg: Config) -> List[str]:
    """What the configuration asks for that pysf cannot do yet (each with what to do instead).

    pysf accepts every Sample Factory flag; those whose other values it does not implement stop here rather
    than being ignored.
    """
    errors: List[str] = []
    for name, supported, explanation in _NOT_YET_SUPPORTED:
        value = getattr(cfg, name, supported)
        if value != supported and not (isinstance(supported, list) and not value):
            errors.append(f"--{name}={value}: {explanation}")
    if cfg.device == "gpu" and _cuda_available():
        errors.append(
            "--device=gpu: pysf's learner and inference run on the CPU for now (the GPU path is planned), and this "
            "machine has a GPU, so training would not be where you asked. Use --device=cpu."
        )
    if getattr(cfg, "episode_counter", False) and getattr(cfg, "batched_sampling", False):
        errors.append(
            "--episode_counter=True wraps each single-agent env in EpisodeCounterWrapper; with --batched_sampling=True "
            "the envs are batches. Use one of the two."
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


def _frozen_policy_errors(cfg: Config) -> List[str]:
    """``--frozen_policies`` that name no checkpoint."""
    from pysf.algo.runners.frozen_policies import frozen_policy_paths, resolve_frozen_checkpoint

    errors: List[str] = []
    for path in frozen_policy_paths(cfg):
        try:
            resolve_frozen_checkpoint(path)
        except ValueError as exc:
            errors.append(str(exc))
    return errors


def _policies_flags(cfg: Config) -> str:
    """The flags that make the policies agents act for, for messages: ``--num_policies=2`` (+ the frozen ones)."""
    from pysf.algo.runners.frozen_policies import frozen_policy_paths

    frozen = len(frozen_policy_paths(cfg))
    return f"--num_policies={cfg.num_policies}" + (f" + {frozen} --frozen_policies" if frozen else "")


def _data_layout_errors(cfg: Config, num_agents: int, recurrence: int, recurrence_is_auto: bool) -> List[str]:
    """Problems with how envs are split and how samples are batched (all sizes are known to be >= 1)."""
    errors: List[str] = []
    envs, splits, rollout = int(cfg.num_envs_per_worker), int(cfg.worker_num_splits), int(cfg.rollout)
    batch_size, num_batches = int(cfg.batch_size), int(cfg.num_batches_per_epoch)
    from pysf.algo.runners.frozen_policies import num_acting_policies

    num_workers, num_policies = int(cfg.num_workers), num_acting_policies(cfg)
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
            f"{_policies_flags(cfg)} = {samples_per_rollout}\n"
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
    if sync and num_policies > 1:
        errors.extend(_sync_multi_policy_errors(cfg, num_agents, dataset, samples_per_rollout))
    return errors


def _sync_multi_policy_errors(cfg: Config, num_agents: int, dataset: int, samples_per_rollout: int) -> List[str]:
    """Sync mode with several policies trains every policy on one rollout of all envs per iteration: the agent ->
    policy mapping (csrc/sampler/split_assignment.h) must give each policy the same number of agents."""
    errors: List[str] = []
    from pysf.algo.runners.frozen_policies import num_acting_policies

    num_policies, envs = num_acting_policies(cfg), int(cfg.num_workers) * int(cfg.num_envs_per_worker)
    if cfg.pbt_mix_policies_in_one_env:
        units, what = envs * num_agents, f"agents (--num_workers * --num_envs_per_worker * num_agents={num_agents})"
    else:
        units, what = envs, "envs (--num_workers * --num_envs_per_worker, --pbt_mix_policies_in_one_env=False)"
    if units % num_policies != 0:
        errors.append(
            f"Sync mode with {_policies_flags(cfg)} gives every policy the same share of the {units} {what}; "
            f"make their number a multiple of {num_policies}, or use --async_rl=True."
        )
    if samples_per_rollout > 0 and dataset != samples_per_rollout:
        errors.append(
            f"Sync mode with {_policies_flags(cfg)} trains each policy on one rollout of its agents per "
            f"iteration for now: --batch_size * --num_batches_per_epoch = {dataset} must equal {samples_per_rollout} "
            f"(the samples per rollout above), or use --async_rl=True."
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
