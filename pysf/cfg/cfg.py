"""Every command-line flag of Sample Factory 2.1.x, grouped exactly as in ``sample_factory.cfg.cfg``.

Each ``add_*_args(p)`` function adds one group of flags to an ``argparse.ArgumentParser``. Flag names, types,
defaults and choices match Sample Factory, so existing training scripts, ``parser.set_defaults(...)`` overrides
and saved ``config.json`` files keep working. pysf-specific flags (``--inference_backend``, ``--env_backend``)
say so in their help text.

Conventions (as in Sample Factory):

- booleans take an explicit value parsed by :func:`str2bool`: ``--use_rnn=False`` or ``--use_rnn False``;
- lists use ``nargs="*"`` without ``=``: ``--encoder_mlp_layers 256 128`` (no values gives an empty list);
- help strings must not contain a bare percent sign: argparse %-formats them to insert the defaults.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from argparse import ArgumentParser

from pysf import _C
from pysf.cfg.backends import ENV_BACKENDS, INFERENCE_BACKENDS, PLANNED_INFERENCE_BACKENDS

# The native sampler owns the defaults of the flags that configure it (csrc/sampler/sampler.h SamplerConfig).
_SAMPLER_DEFAULTS = _C.sampler_config_defaults()

_TRUE_STRINGS = frozenset({"true", "1", "yes"})
_FALSE_STRINGS = frozenset({"false", "0", "no"})


def str2bool(value: str | bool) -> bool:
    """Parse a boolean flag value: true/false, 1/0, yes/no in any letter case (``--flag=True``).

    A ``bool`` is returned unchanged so that ``str2bool`` is idempotent on already-parsed values.
    Raises ``argparse.ArgumentTypeError`` (argparse turns it into a usage error) for anything else.
    """
    if isinstance(value, bool):
        return value
    normalized = str(value).strip().lower()
    if normalized in _TRUE_STRINGS:
        return True
    if normalized in _FALSE_STRINGS:
        return False
    raise argparse.ArgumentTypeError(f"boolean value expected (True/False, 1/0, yes/no), got {value!r}")


# --------------------------------------------------------------------------------------------------------------
# Basic experiment identity
# --------------------------------------------------------------------------------------------------------------


def add_basic_cli_args(p: ArgumentParser) -> None:
    """Flags that identify the experiment: algorithm, environment, experiment name/folder, device, seed.

    ``-h/--help`` is a plain store_true flag (the parser is built with ``add_help=False``) so that help is only
    printed after env-specific scripts had the chance to add their own flags (see ``postprocess_args``).
    """
    p.add_argument(
        "-h", "--help", action="store_true", required=False, help="Show this help message (all flags) and exit."
    )
    p.add_argument("--algo", type=str, default="APPO", help="RL algorithm. Only APPO is implemented.")
    p.add_argument(
        "--env",
        type=str,
        default=None,
        required=True,
        help="Name of the environment to train on; must have been registered with register_env().",
    )
    p.add_argument(
        "--experiment",
        type=str,
        default="default_experiment",
        help="Experiment name; also the name of its folder under --train_dir. If that folder already exists the "
        "experiment is RESUMED (see --restart_behavior): its config.json is reloaded and only flags given "
        "explicitly on the command line override the saved values.",
    )
    p.add_argument(
        "--train_dir",
        type=str,
        default=os.path.join(os.getcwd(), "train_dir"),
        help="Root folder that holds one sub-folder per experiment (config, checkpoints, logs, summaries).",
    )
    p.add_argument(
        "--restart_behavior",
        type=str,
        default="resume",
        choices=["resume", "restart", "overwrite"],
        help="What to do when the experiment folder already exists: 'resume' continues training from the latest "
        "checkpoint with the saved config; 'restart' renames the old folder (<dir>_old0001, ...) and starts "
        "from scratch; 'overwrite' deletes the old folder and starts from scratch. No effect for new experiments.",
    )
    p.add_argument(
        "--device",
        type=str,
        default="gpu",
        choices=["gpu", "cpu"],
        help="Where the learner and policy inference run. CPU is only sensible for small (e.g. MLP) policies.",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="Fixed random seed (torch and numpy in the learner). None means a random, non-reproducible run.",
    )


# --------------------------------------------------------------------------------------------------------------
# RL: system layout, data regime, losses, optimization, observation preprocessing, logging, checkpoints
# --------------------------------------------------------------------------------------------------------------


def add_rl_args(p: ArgumentParser) -> None:
    """Algorithm-independent RL flags: sampling system, data regime, losses, optimizer, learning-rate schedule,
    observation preprocessing, experience decorrelation, performance knobs, logging, termination and checkpoints.
    """
    _add_system_args(p)
    _add_data_regime_args(p)
    _add_loss_args(p)
    _add_optimization_args(p)
    _add_observation_preprocessing_args(p)
    _add_decorrelation_and_performance_args(p)
    _add_logging_args(p)
    _add_termination_and_checkpoint_args(p)
    p.add_argument(
        "--benchmark",
        type=str2bool,
        default=False,
        help="Benchmark mode: measure throughput rather than train for results.",
    )


def _add_system_args(p: ArgumentParser) -> None:
    """How sampling and learning are laid out: policies, sync/async, serial mode, buffering, workers."""
    p.add_argument(
        "--num_policies",
        type=int,
        default=1,
        help="Number of policies trained side by side (multi-agent self-play, population-based training).",
    )
    p.add_argument(
        "--frozen_policies",
        type=str,
        nargs="*",
        default=[],
        help="pysf-specific: checkpoints of policies that act but do not learn, each a .pth file, a checkpoint_p<i> folder or "
        "an experiment folder (the newest checkpoint of its policy 0). They are policies --num_policies, "
        "--num_policies + 1, ... of the agent -> policy mapping, so the learning policies play against them (an "
        "evaluation against a fixed opponent, a simple league); this run's model flags must build their models.",
    )
    p.add_argument(
        "--async_rl",
        type=str2bool,
        default=True,
        help="Keep collecting experience with the current policy while the learner trains on the previous batch. "
        "Much higher throughput, but part of each batch comes from slightly older policies (policy lag). "
        "Set to False for classic synchronous PPO, e.g. for envs with complex action spaces or RNN policies that "
        "are sensitive to policy lag.",
    )
    p.add_argument(
        "--serial_mode",
        type=str2bool,
        default=False,
        help="Run all components (rollout, inference, learner) in a single process. Handy for debugging.",
    )
    p.add_argument(
        "--batched_sampling",
        type=str2bool,
        default=False,
        help="Process the envs of a rollout worker as one big batch (for vectorized / GPU-accelerated envs such as "
        "IsaacGym). Limitations: one policy per rollout worker, no inactive agents, and infos must be a single dict "
        "of per-env lists/tensors. Use non-batched sampling if your env returns heterogeneous info dicts.",
    )
    p.add_argument(
        "--num_batches_to_accumulate",
        type=int,
        default=2,
        help="How many training batches the learner may have queued before experience collection pauses. "
        "Lower values reduce policy lag, higher values smooth out bursty collection. Forced to 1 in sync mode.",
    )
    p.add_argument(
        "--worker_num_splits",
        type=int,
        default=_SAMPLER_DEFAULTS["worker_num_splits"],
        help="Split each worker's envs into this many groups that step while the others wait for actions: "
        "2 is double buffering, 1 disables it, 3 is triple buffering. Must divide --num_envs_per_worker.",
    )
    p.add_argument(
        "--policy_workers_per_policy",
        type=int,
        default=_SAMPLER_DEFAULTS["num_inference_threads"],
        help="Number of inference workers computing actions for each policy.",
    )
    p.add_argument(
        "--max_policy_lag",
        type=int,
        default=1000,
        help="Experience collected by a policy more than this many versions (SGD steps) older than the current "
        "one is masked out as invalid.",
    )
    p.add_argument(
        "--inference_backend",
        type=str,
        default="auto",
        choices=[*INFERENCE_BACKENDS, *PLANNED_INFERENCE_BACKENDS],
        help="pysf-specific: how the policy runs inside the rollout engine. 'auto' (default): compiled with "
        "TorchScript and executed in C++ when the model compiles, otherwise eager PyTorch (one log line says "
        "which component did not compile and why); 'torchscript': compiled, and a model that does not compile "
        "stops with the full error; 'python': eager PyTorch called from the engine (slower); 'aoti': an "
        "AOTInductor ahead-of-time compiled model (not available yet).",
    )
    p.add_argument(
        "--torch_threads",
        type=int,
        default=0,
        help="pysf-specific: PyTorch's intra-op threads in the training process, shared by the learner and "
        "inference (one setting per process). 0 (default): one per CPU core available to the process when the "
        "model has a conv encoder (image observations: the learner's convolutions then bound the run), else 1, "
        "as Sample Factory's learner and inference workers use. Env worker processes always use 1.",
    )
    p.add_argument(
        "--num_workers",
        type=int,
        default=multiprocessing.cpu_count(),
        help="Number of parallel rollout (environment) workers. Defaults to the number of CPU cores.",
    )
    p.add_argument(
        "--num_envs_per_worker",
        type=int,
        default=2,
        help="Number of environments stepped by each rollout worker. Must be a multiple of --worker_num_splits; "
        "values around 10-30 give the best throughput on fast envs such as Atari or VizDoom.",
    )


def _add_data_regime_args(p: ArgumentParser) -> None:
    """Batch sizes, epochs, rollout length and backpropagation-through-time length."""
    p.add_argument("--batch_size", type=int, default=1024, help="SGD minibatch size, in samples (env transitions).")
    p.add_argument(
        "--num_batches_per_epoch",
        type=int,
        default=1,
        help="Minibatches collected before each training iteration: the dataset of one iteration holds "
        "batch_size * num_batches_per_epoch transitions.",
    )
    p.add_argument(
        "--num_epochs",
        type=int,
        default=1,
        help="Number of passes over each training iteration's dataset.",
    )
    p.add_argument(
        "--rollout",
        type=int,
        default=32,
        help="Length of the trajectory (timesteps) each env collects before it is sent to the learner; returns, "
        "GAE and V-trace are bootstrapped at its end. Independent of the episode length. For RNN policies it "
        "should be a multiple of --recurrence.",
    )
    p.add_argument(
        "--recurrence",
        type=int,
        default=-1,
        help="Backpropagation-through-time length. -1 picks it automatically: the rollout length for RNN policies "
        "and 1 for feed-forward ones. V-trace requires recurrence == rollout.",
    )
    p.add_argument(
        "--shuffle_minibatches",
        type=str2bool,
        default=False,
        help="Shuffle transitions between minibatches on every epoch. Costs learner throughput with large batches.",
    )


def _add_loss_args(p: ArgumentParser) -> None:
    """Returns, reward processing, loss coefficients, PPO clipping, V-trace."""
    p.add_argument("--gamma", type=float, default=0.99, help="Discount factor.")
    p.add_argument(
        "--reward_scale",
        type=float,
        default=_SAMPLER_DEFAULTS["reward_scale"],
        help="Multiply every reward by this factor before learning; useful when rewards are so large that value "
        "regression becomes hard.",
    )
    p.add_argument(
        "--reward_clip",
        type=float,
        default=_SAMPLER_DEFAULTS["reward_clip"],
        help="Clip (scaled) rewards to [-reward_clip, reward_clip]. The default effectively disables clipping.",
    )
    p.add_argument(
        "--value_bootstrap",
        type=str2bool,
        default=False,
        help="When an episode is truncated (time limit) rather than terminated, bootstrap the return from the value "
        "estimate of the last state instead of treating it as terminal.",
    )
    p.add_argument(
        "--normalize_returns",
        type=str2bool,
        default=True,
        help="Normalize discounted returns with running mean/std statistics (stored in the checkpoint). "
        "Incompatible with --with_vtrace.",
    )
    p.add_argument(
        "--exploration_loss_coeff",
        type=float,
        default=0.003,
        help="Weight of the exploration term (see --exploration_loss) in the loss.",
    )
    p.add_argument("--value_loss_coeff", type=float, default=0.5, help="Weight of the critic (value) loss.")
    p.add_argument(
        "--kl_loss_coeff",
        type=float,
        default=0.0,
        help="Weight of a fixed KL penalty between the behavior and the current policy (Schulman et al. 2017). "
        "Recommended (e.g. 0.1) for continuous action spaces.",
    )
    p.add_argument(
        "--exploration_loss",
        type=str,
        default="entropy",
        choices=["entropy", "symmetric_kl"],
        help="Exploration term: 'entropy' maximizes the action distribution's entropy; 'symmetric_kl' minimizes "
        "the symmetric KL divergence to a uniform prior, whose penalty grows without bound as an action's "
        "probability approaches zero, which keeps the agent from giving up on actions entirely.",
    )
    p.add_argument(
        "--gae_lambda",
        type=float,
        default=0.95,
        help="Lambda of Generalized Advantage Estimation (not used with V-trace).",
    )
    p.add_argument(
        "--ppo_clip_ratio",
        type=float,
        default=0.1,
        help="PPO probability-ratio clipping epsilon. The ratio is clipped to [1/(1+eps), 1+eps], a symmetric "
        "variant of the paper's [1-eps, 1+eps].",
    )
    p.add_argument(
        "--ppo_clip_value",
        type=float,
        default=1.0,
        help="Largest change of the value estimate before the value loss is clipped; depends on value magnitude.",
    )
    p.add_argument(
        "--with_vtrace",
        type=str2bool,
        default=False,
        help="Use V-trace off-policy correction instead of GAE. Requires recurrence == rollout and "
        "--normalize_returns=False.",
    )
    p.add_argument(
        "--vtrace_rho",
        type=float,
        default=1.0,
        help="V-trace rho-bar: truncation level of the importance weights in the value targets.",
    )
    p.add_argument(
        "--vtrace_c",
        type=float,
        default=1.0,
        help="V-trace c-bar: truncation level of the trace coefficients; lower values reduce variance "
        "(similar in effect to GAE lambda < 1).",
    )


def _add_optimization_args(p: ArgumentParser) -> None:
    """Optimizer, gradient clipping and learning-rate schedule."""
    p.add_argument(
        "--optimizer",
        type=str,
        default="adam",
        choices=["adam", "lamb"],
        help="Optimizer: Adam, or LAMB (Adam with layer-wise trust ratios, meant for very large batches).",
    )
    p.add_argument(
        "--adam_eps",
        type=float,
        default=1e-6,
        help="Adam epsilon. Values between 1e-8 and 1e-5 work; 1e-3 and above do not.",
    )
    p.add_argument("--adam_beta1", type=float, default=0.9, help="Adam beta1 (first-moment decay).")
    p.add_argument("--adam_beta2", type=float, default=0.999, help="Adam beta2 (second-moment decay).")
    p.add_argument(
        "--max_grad_norm",
        type=float,
        default=4.0,
        help="Clip the global L2 norm of the gradient to this value; 0 disables clipping.",
    )
    p.add_argument("--learning_rate", type=float, default=1e-4, help="Learning rate (initial value for schedules).")
    p.add_argument(
        "--lr_schedule",
        type=str,
        default="constant",
        # pysf also accepts linear_decay here; Sample Factory only allowed it through set_defaults().
        choices=["constant", "kl_adaptive_minibatch", "kl_adaptive_epoch", "linear_decay"],
        help="Learning-rate schedule. 'constant' keeps --learning_rate. 'kl_adaptive_minibatch'/'kl_adaptive_epoch' "
        "raise or lower the rate when the KL divergence to the behavior policy after each minibatch/epoch drifts "
        "away from --lr_schedule_kl_threshold, within [--lr_adaptive_min, --lr_adaptive_max]. 'linear_decay' "
        "decreases it linearly to zero over --train_for_env_steps.",
    )
    p.add_argument(
        "--lr_schedule_kl_threshold",
        type=float,
        default=0.008,
        help="Target KL divergence for the kl_adaptive_* schedules.",
    )
    p.add_argument(
        "--lr_adaptive_min",
        type=float,
        default=1e-6,
        help="Lower bound of the learning rate for the kl_adaptive_* schedules.",
    )
    p.add_argument(
        "--lr_adaptive_max",
        type=float,
        default=1e-2,
        help="Upper bound of the learning rate for the kl_adaptive_* schedules. Tuned for IsaacGym locomotion; "
        "try 1e-3 if training becomes unstable once the reported rate reaches this bound.",
    )


def _add_observation_preprocessing_args(p: ArgumentParser) -> None:
    """Fixed and running observation normalization."""
    p.add_argument(
        "--obs_subtract_mean",
        type=float,
        default=0.0,
        help="Subtract this constant from observations (e.g. 128.0 for 8-bit images).",
    )
    p.add_argument(
        "--obs_scale",
        type=float,
        default=1.0,
        help="Divide observations by this constant (e.g. 255.0 for 8-bit images).",
    )
    p.add_argument(
        "--normalize_input",
        type=str2bool,
        default=True,
        help="Normalize observations with running mean/std statistics (part of the model, saved in checkpoints).",
    )
    p.add_argument(
        "--normalize_input_keys",
        type=str,
        nargs="*",
        default=None,
        help="Observation dict keys to normalize with --normalize_input; None normalizes every key.",
    )


def _add_decorrelation_and_performance_args(p: ArgumentParser) -> None:
    """Start-up experience decorrelation, actor GPUs, CPU affinity, threading and process priority."""
    p.add_argument(
        "--decorrelate_experience_max_seconds",
        type=int,
        default=0,
        help="At start-up each rollout worker idles a random time up to this many seconds, so that episodes (and "
        "expensive resets) are spread out in time instead of arriving in bursts that increase policy lag. "
        "100-200 helps envs with very uneven step or reset times; 0 disables it.",
    )
    p.add_argument(
        "--decorrelate_envs_on_one_worker",
        type=str2bool,
        default=True,
        help="Also decorrelate the envs of one worker, so fixed-length episodes do not all reset in the same rollout.",
    )
    p.add_argument(
        "--actor_worker_gpus",
        type=int,
        nargs="*",
        default=[],
        help="GPU indices rollout workers may use (e.g. for GPU rendering or GPU-side envs). Empty: CPU only.",
    )
    p.add_argument(
        "--set_workers_cpu_affinity",
        type=str2bool,
        default=True,
        help="Pin each worker process to specific CPU cores to avoid context switches. Disable for envs that "
        "benefit from using many cores at once (e.g. some DMLab levels with expensive resets).",
    )
    p.add_argument(
        "--force_envs_single_thread",
        type=str2bool,
        default=False,
        help="Limit OpenMP/MKL/BLAS inside environments to one thread (threadpoolctl). Parallelism already comes "
        "from the workers; useful unless there are fewer workers than cores.",
    )
    p.add_argument(
        "--default_niceness",
        type=int,
        default=0,
        help="Process niceness of the highest-priority process (the learner). Negative values need privileges.",
    )


def _add_logging_args(p: ArgumentParser) -> None:
    """Log file, summary intervals, statistics averaging and component heartbeats."""
    p.add_argument(
        "--log_to_file",
        type=str2bool,
        default=True,
        help="Also write the log to sf_log.txt in the experiment folder (disable on slow network filesystems).",
    )
    p.add_argument(
        "--experiment_summaries_interval",
        type=int,
        default=10,
        help="Seconds between writes of averaged experiment statistics (reward, episode length, custom stats).",
    )
    p.add_argument(
        "--flush_summaries_interval",
        type=int,
        default=30,
        help="Seconds between flushes of TensorBoard summaries to disk (raise on slow network filesystems).",
    )
    p.add_argument(
        "--stats_avg",
        type=int,
        default=100,
        help="Number of most recent episodes averaged for reported statistics and best-checkpoint selection.",
    )
    p.add_argument(
        "--summaries_use_frameskip",
        type=str2bool,
        default=True,
        help="Multiply step counters in summaries and FPS by --env_frameskip, so the x-axis counts simulated frames "
        "rather than frames seen by the policy.",
    )
    p.add_argument(
        "--heartbeat_interval",
        type=int,
        default=int(_SAMPLER_DEFAULTS["stall_check_seconds"]),
        help="How often (seconds) the sampler checks that env worker processes are not stuck (see "
        "--heartbeat_reporting_interval). A crashed worker is detected at once regardless.",
    )
    p.add_argument(
        "--heartbeat_reporting_interval",
        type=int,
        default=180,
        help="An env worker process that owes a step or reset and shows no progress for this many seconds (three "
        "times as long while it starts) is reported as stuck, with its Python stack, and killed; the run ends with a "
        "failure and keeps its last checkpoint. 0 disables the check.",
    )


def _add_termination_and_checkpoint_args(p: ArgumentParser) -> None:
    """When to stop and how checkpoints (latest, best, milestones) are saved and loaded."""
    p.add_argument(
        "--train_for_env_steps",
        type=int,
        default=int(1e10),
        help="Stop once every policy has been trained on this many env steps.",
    )
    p.add_argument(
        "--train_for_seconds",
        type=int,
        default=int(1e10),
        help="Stop after this many seconds of training.",
    )
    p.add_argument("--save_every_sec", type=int, default=120, help="Seconds between regular checkpoints.")
    p.add_argument(
        "--keep_checkpoints",
        type=int,
        default=2,
        help="Number of most recent regular checkpoints kept per policy; older ones are deleted.",
    )
    p.add_argument(
        "--load_checkpoint_kind",
        type=str,
        default="latest",
        choices=["latest", "best"],
        help="Which checkpoint to load when resuming or evaluating: the most recent or the best-scoring one.",
    )
    p.add_argument(
        "--save_milestones_sec",
        type=int,
        default=-1,
        help="Seconds between milestone checkpoints, kept forever in a separate folder; -1 disables them.",
    )
    p.add_argument(
        "--save_best_every_sec",
        type=int,
        default=5,
        help="Seconds between checks whether the policy beats its best score so far and should be saved as 'best'.",
    )
    p.add_argument(
        "--save_best_metric",
        type=str,
        default="reward",
        help="Episode statistic used to rank policies for the 'best' checkpoint (episode reward by default).",
    )
    p.add_argument(
        "--save_best_after",
        type=int,
        default=100000,
        help="Only save 'best' checkpoints after this many env steps, so early lucky episodes do not dominate.",
    )


# --------------------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------------------


def add_model_args(p: ArgumentParser) -> None:
    """Model architecture flags: encoder (MLP for vector observations, conv net for images), core (RNN or
    identity), decoder, activation, initialization and continuous-action parameterization.

    The default encoder picks MLP or conv per observation key, so only the settings of the matching kind apply.
    """
    p.add_argument(
        "--encoder_mlp_layers",
        type=int,
        nargs="*",
        default=[512, 512],
        help="Layer sizes of the MLP encoder used for 1-D (vector) observations; ignored for images. Pass values "
        "separated by spaces without '=': --encoder_mlp_layers 256 128.",
    )
    p.add_argument(
        "--encoder_conv_architecture",
        type=str,
        default="convnet_simple",
        choices=["convnet_simple", "convnet_impala", "convnet_atari", "resnet_impala"],
        help="Convolutional encoder used for image observations (CHW). Register a custom encoder factory for "
        "other architectures.",
    )
    p.add_argument(
        "--encoder_conv_mlp_layers",
        type=int,
        nargs="*",
        default=[512],
        help="Fully connected layer sizes applied after the convolutional encoder.",
    )
    p.add_argument("--use_rnn", type=str2bool, default=True, help="Use a recurrent core (otherwise identity).")
    p.add_argument("--rnn_size", type=int, default=512, help="Hidden state size of the recurrent core.")
    p.add_argument(
        "--rnn_type",
        type=str,
        default="gru",
        choices=["gru", "lstm"],
        help="Recurrent cell type used when --use_rnn is True.",
    )
    p.add_argument("--rnn_num_layers", type=int, default=1, help="Number of stacked recurrent layers.")
    p.add_argument(
        "--decoder_mlp_layers",
        type=int,
        nargs="*",
        default=[],
        help="Layer sizes of the MLP between the core and the action/value heads; empty means identity.",
    )
    p.add_argument(
        "--nonlinearity",
        type=str,
        default="elu",
        choices=["elu", "relu", "tanh"],
        help="Activation function used throughout the model.",
    )
    p.add_argument(
        "--policy_initialization",
        type=str,
        default="orthogonal",
        choices=["orthogonal", "xavier_uniform", "torch_default"],
        help="Weight initialization of linear and conv layers (biases are zeroed); torch_default leaves "
        "PyTorch's initialization untouched.",
    )
    p.add_argument(
        "--policy_init_gain",
        type=float,
        default=1.0,
        help="Gain passed to the orthogonal / xavier_uniform initializers.",
    )
    p.add_argument(
        "--actor_critic_share_weights",
        type=str2bool,
        default=True,
        help="Share encoder, core and decoder between actor and critic; False builds a separate network for each.",
    )
    p.add_argument(
        "--adaptive_stddev",
        type=str2bool,
        default=True,
        help="Continuous actions only: the standard deviation is predicted from the state; False learns a single "
        "state-independent log-stddev vector.",
    )
    p.add_argument(
        "--continuous_tanh_scale",
        type=float,
        default=0.0,
        help="Continuous actions only: if > 0, squash action means to tanh(mu / scale) * scale. Experimental, "
        "use with --adaptive_stddev=False.",
    )
    p.add_argument(
        "--initial_stddev",
        type=float,
        default=1.0,
        help="Continuous actions only: initial standard deviation of the state-independent (non-adaptive) stddev.",
    )


# --------------------------------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------------------------------


def add_default_env_args(p: ArgumentParser) -> None:
    """Environment properties that cannot easily be queried from an env instance, plus env wrappers and the
    choice of environment implementation."""
    p.add_argument(
        "--use_env_info_cache",
        type=str2bool,
        default=False,
        help="Cache the env's spaces and properties on disk instead of creating a temporary env at each start. "
        "pysf keys each entry by the env's factory, its source file and the env flags, rebuilds stale or corrupt "
        "entries, and never caches native envs.",
    )
    p.add_argument(
        "--env_gpu_actions",
        type=str2bool,
        default=False,
        help="The environment expects actions as GPU-side PyTorch tensors.",
    )
    p.add_argument(
        "--env_gpu_observations",
        type=str2bool,
        default=True,
        help="Keep observations as GPU-side tensors; only matters together with a non-empty --actor_worker_gpus.",
    )
    p.add_argument(
        "--env_frameskip",
        type=int,
        default=1,
        help="Action repeat of the environment. This flag adds no wrapper by itself: env factories may read it to "
        "configure frame skipping. FPS and step counters are multiplied by it (see --summaries_use_frameskip).",
    )
    p.add_argument(
        "--env_framestack",
        type=int,
        default=1,
        help="Number of stacked frames (used by the Atari integration, usually 4).",
    )
    p.add_argument(
        "--pixel_format",
        type=str,
        default="CHW",
        help="Memory layout of image observations expected by the model: CHW for PyTorch (default), HWC otherwise.",
    )
    p.add_argument(
        "--use_record_episode_statistics",
        type=str2bool,
        default=False,
        help="Track episode reward and length with gymnasium's RecordEpisodeStatistics wrapper.",
    )
    p.add_argument(
        "--episode_counter",
        type=str2bool,
        default=False,
        help="Wrap envs with EpisodeCounterWrapper, which reports the index of each finished episode (used by fast "
        "evaluation to sample a fixed number of episodes).",
    )
    p.add_argument(
        "--env_backend",
        type=str,
        default="auto",
        choices=list(ENV_BACKENDS),
        help="pysf-specific: which environment implementation to use. 'auto' uses pysf's native C++ implementation "
        "when one exists for --env and the Python/gymnasium factory otherwise; 'native' requires the C++ "
        "implementation; 'gym' always uses the Python/gymnasium factory registered with register_env().",
    )


# --------------------------------------------------------------------------------------------------------------
# Evaluation (enjoy / eval / hub)
# --------------------------------------------------------------------------------------------------------------


def add_eval_args(p: ArgumentParser) -> None:
    """Flags used only when evaluating, rendering, recording or publishing a trained policy."""
    p.add_argument(
        "--fps",
        type=int,
        default=0,
        help="Rendering speed in frames per second. 0 uses the env's natural rate if it has one, else unlimited.",
    )
    p.add_argument(
        "--eval_env_frameskip",
        type=int,
        default=None,
        help="Env frameskip during evaluation; None uses --env_frameskip. A smaller value (e.g. 1 for VizDoom) "
        "renders more smoothly: each action is then repeated env_frameskip / eval_env_frameskip times.",
    )
    p.add_argument("--no_render", action="store_true", help="Do not render the environment during evaluation.")
    p.add_argument("--save_video", action="store_true", help="Record a video instead of rendering to the screen.")
    p.add_argument(
        "--video_frames",
        type=int,
        default=int(1e9),
        help="Number of frames to record; the default records until --max_num_frames, -1 records one episode.",
    )
    p.add_argument(
        "--video_name",
        type=str,
        default=None,
        help="File name of the recorded video in the experiment folder; None means replay.mp4.",
    )
    p.add_argument(
        "--max_num_frames",
        type=int,
        default=int(1e9),
        help="Stop evaluation after this many frames.",
    )
    p.add_argument(
        "--max_num_episodes",
        type=int,
        default=int(1e9),
        help="Stop evaluation after this many episodes.",
    )
    p.add_argument(
        "--push_to_hub",
        action="store_true",
        help="Upload the experiment folder (model, config, video, model card) to the Hugging Face Hub.",
    )
    p.add_argument(
        "--hf_repository",
        type=str,
        default=None,
        help="Hugging Face Hub repository to push to, written as <username>/<repo_name>.",
    )
    p.add_argument(
        "--policy_index",
        type=int,
        default=0,
        help="Which policy to evaluate when several were trained (--num_policies > 1).",
    )
    p.add_argument(
        "--eval_deterministic",
        type=str2bool,
        default=False,
        help="Take the most likely action (argmax) instead of sampling from the action distribution.",
    )
    p.add_argument(
        "--train_script",
        type=str,
        default=None,
        help="Python module of the training script, quoted in the generated Hugging Face model card.",
    )
    p.add_argument(
        "--enjoy_script",
        type=str,
        default=None,
        help="Python module of the evaluation script, quoted in the generated Hugging Face model card.",
    )
    p.add_argument(
        "--sample_env_episodes",
        type=int,
        default=256,
        help="Number of episodes collected by fast parallel evaluation (eval).",
    )
    p.add_argument(
        "--csv_folder_name",
        type=str,
        default=None,
        help="Folder where fast parallel evaluation (eval) writes per-episode results as CSV; None writes no CSV.",
    )


# --------------------------------------------------------------------------------------------------------------
# Weights & Biases
# --------------------------------------------------------------------------------------------------------------


def add_wandb_args(p: ArgumentParser) -> None:
    """Weights & Biases experiment tracking (mirrors the TensorBoard summaries)."""
    p.add_argument("--with_wandb", type=str2bool, default=False, help="Log the experiment to Weights & Biases.")
    p.add_argument(
        "--wandb_user",
        type=str,
        default=None,
        help="Weights & Biases entity (user or team name); pass it on the command line.",
    )
    p.add_argument("--wandb_project", type=str, default="sample_factory", help="Weights & Biases project.")
    p.add_argument(
        "--wandb_group",
        type=str,
        default=None,
        help="Weights & Biases group used to gather related runs; None uses the env name.",
    )
    p.add_argument("--wandb_job_type", type=str, default="SF", help="Weights & Biases job type.")
    p.add_argument(
        "--wandb_tags",
        type=str,
        nargs="*",
        default=[],
        help="Tags attached to the Weights & Biases run, separated by spaces.",
    )
    p.add_argument(
        "--wandb_dir",
        type=str,
        default=os.path.join(os.getcwd(), "wandb"),
        help="Local folder where Weights & Biases stores its run files.",
    )


# --------------------------------------------------------------------------------------------------------------
# Population-based training
# --------------------------------------------------------------------------------------------------------------


def add_pbt_args(p: ArgumentParser) -> None:
    """Population-based training: periodically copy the best policies over the worst and mutate hyperparameters."""
    p.add_argument(
        "--with_pbt",
        type=str2bool,
        default=False,
        help="Enable population-based training across the --num_policies policies.",
    )
    p.add_argument(
        "--pbt_mix_policies_in_one_env",
        type=str2bool,
        default=_SAMPLER_DEFAULTS["mix_policies_in_one_env"],
        help="In multi-agent envs, let agents of the same env be controlled by different policies.",
    )
    p.add_argument(
        "--pbt_period_env_steps",
        type=int,
        default=int(5e6),
        help="Env steps between PBT rounds (replace worst policies with the best ones, perturb hyperparameters).",
    )
    p.add_argument(
        "--pbt_start_mutation",
        type=int,
        default=int(2e7),
        help="Env steps before the first PBT round, so that policies can diversify first.",
    )
    p.add_argument(
        "--pbt_replace_fraction",
        type=float,
        default=0.3,
        help="Fraction of worst-performing policies (rounded up) replaced by copies of better ones each round.",
    )
    p.add_argument(
        "--pbt_mutation_rate",
        type=float,
        default=0.15,
        help="Probability that each hyperparameter is perturbed in a PBT round.",
    )
    p.add_argument(
        "--pbt_replace_reward_gap",
        type=float,
        default=0.1,
        help="Minimum relative objective gap for a policy to be replaced by a better one.",
    )
    p.add_argument(
        "--pbt_replace_reward_gap_absolute",
        type=float,
        default=1e-6,
        help="Minimum absolute objective gap for a policy to be replaced by a better one.",
    )
    p.add_argument(
        "--pbt_optimize_gamma",
        type=str2bool,
        default=False,
        help="Also mutate the discount factor gamma (experimental).",
    )
    p.add_argument(
        "--pbt_target_objective",
        type=str,
        default="true_objective",
        help="Per-policy statistic that PBT maximizes. 'true_objective' is the env's info['true_objective'] if it "
        "reports one and the episode reward otherwise; any other episodic statistic name can be used.",
    )
    p.add_argument(
        "--pbt_perturb_min",
        type=float,
        default=1.1,
        help="A mutated float hyperparameter is multiplied or divided by a factor drawn uniformly from "
        "[pbt_perturb_min, pbt_perturb_max].",
    )
    p.add_argument(
        "--pbt_perturb_max",
        type=float,
        default=1.5,
        help="Upper end of the perturbation factor range (see --pbt_perturb_min).",
    )
