"""RL helpers of the learner and of user code (Sample Factory's ``sample_factory.algo.utils.rl_utils``).

``gae_advantages`` and ``vtrace`` call the PyTorch operators ``torch.ops.pysf.gae_advantages`` and
``torch.ops.pysf.vtrace`` (registered by csrc/ops when ``pysf`` is imported), so they also work inside TorchScript,
``torch.compile`` and ``torch.export``. Their docstrings below are the operators' contract. Shapes are batch-major,
``[N trajectories, T steps]``, as in the trajectory buffers. ``gae_advantages`` takes Sample Factory's positional
arguments ``(rewards, dones, values, valids, gamma, lambda)``.

The other helpers: ``make_dones`` (terminated | truncated), sizes derived from the configuration
(``trajectories_per_minibatch``, ``trajectories_per_training_iteration``, ``total_num_envs``, ``total_num_agents``,
``num_agents_per_worker``), ``samples_per_trajectory``, ``prepare_and_normalize_obs`` and
``calculate_discounted_sum_torch`` (a TorchScript function, time-major as in Sample Factory).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from pysf.algo.utils.tensor_utils import ensure_torch_tensor
from pysf.utils.typing import Config

__all__ = [
    "gae_advantages",
    "vtrace",
    "calculate_discounted_sum_torch",
    "make_dones",
    "DonesType",
    "trajectories_per_minibatch",
    "trajectories_per_training_iteration",
    "total_num_envs",
    "total_num_agents",
    "num_agents_per_worker",
    "prepare_and_normalize_obs",
    "samples_per_trajectory",
]


def gae_advantages(
    rewards: Tensor,
    dones: Tensor,
    values: Tensor,
    valids: Tensor,
    gamma: float,
    gae_lambda: float,
) -> Tensor:
    """Sample Factory's GAE advantages with invalid steps (``_prepare_batch``, once per training iteration).

    The operator ``torch.ops.pysf.gae_advantages``; this docstring is its contract.

    Args:
        rewards: ``[N, T]`` floating point.
        dones: ``[N, T]`` bool, or a real dtype holding 0/1; ``done_t`` ends the episode after step ``t``.
        values: ``[N, T+1]`` floating point, denormalized values; column ``T`` is the bootstrap value ``V(s_T)``.
        valids: ``[N, T+1]`` bool or real 0/1; column ``T`` is the bootstrap step's validity. An invalid step holds
            experience of another policy or too old a one.
        gamma: discount, finite.
        gae_lambda: GAE's lambda, finite.

    All tensors on one device, any strides; ``N = 0`` is allowed. For each trajectory, backwards from ``A_T = 0``::

        delta_t = (r_t - V_t) * valid_t + (1 - done_t) * (gamma * V_{t+1} * valid_{t+1})
        d_t     = gamma * gae_lambda * valid_t + (1 - valid_t)      (gamma * lambda if valid, 1 if invalid)
        A_t     = delta_t + d_t * A_{t+1} * (1 - done_t)

    exactly Sample Factory's formulas, flags used linearly as there (after ``.float()``). So invalid steps are
    "transparent": their own reward and value are masked out and they do not discount, the advantage passes
    through them; an invalid step still adds ``gamma * V_{t+1}`` when step ``t+1`` is valid (Sample Factory's
    formula, kept). The learner then forms ``returns = A + valids[:, :T] * V[:, :T]``.

    Computation: float32 (other floating dtypes are converted first), under no-grad mode. CPU tensors run loops
    that keep Sample Factory's grouping of the float operations, so for 0/1 flags they reproduce its tensor code
    to the bit where the compiler does not fuse multiply-adds (x86-64 builds); every other device runs a
    device-generic kernel of ATen ops, one fused op per time step (CUDA too: there is no dedicated CUDA kernel
    yet). The two agree to float32 rounding. CPU work runs on the calling thread with the GIL released.

    Returns:
        The advantages: a new contiguous float32 ``[N, T]`` tensor on the inputs' device, without autograd history
        (an ordinary tensor, not an inference-mode one: usable in later autograd graphs).

    Raises:
        ValueError: naming the argument, for wrong shapes, ``T < 1``, integer rewards/values, complex flags, inputs
            on different devices, a non-finite gamma or gae_lambda.
    """
    return torch.ops.pysf.gae_advantages(rewards, dones, values, valids, gamma, gae_lambda)


def vtrace(
    ratios: Tensor,
    rewards: Tensor,
    dones: Tensor,
    values: Tensor,
    gamma: float,
    vtrace_rho: float,
    vtrace_c: float,
) -> Tuple[Tensor, Tensor]:
    """Sample Factory's V-trace targets and advantages (``--with_vtrace``, per minibatch, recurrence == rollout).

    The operator ``torch.ops.pysf.vtrace``; this docstring is its contract.

    Args:
        ratios: ``[N, T]`` floating point, importance ratios pi/mu of the current network (the learner clamps them
            to [0.05, 20] first).
        rewards: ``[N, T]`` floating point.
        dones: ``[N, T]`` bool, or a real dtype holding 0/1.
        values: ``[N, T]`` floating point, the current network's values; there is no bootstrap column.
        gamma: discount, finite and > 0.
        vtrace_rho: rho_bar, the cap of the ratios in the TD errors and advantages.
        vtrace_c: c_bar, the cap of the trace-cutting ratios.

    All tensors on one device, any strides; ``N = 0`` is allowed. A trajectory of the minibatch is
    ``T = recurrence`` consecutive rows of the flat minibatch, so the learner passes ``x.view(-1, recurrence)``.
    As in Sample Factory's learner, the value after the last step is reconstructed from the last step itself,
    ``V_T = (V_{T-1} - r_{T-1}) / gamma`` (so a non-terminal last step has no TD error, up to rounding), and the
    recursion starts from ``vs_T = V_T``; ``done_{T-1}`` still cuts the bootstrap off. Backwards, with
    ``rho_t = min(rho_bar, ratio_t)``, ``c_t = min(c_bar, ratio_t)``, ``g_t = gamma * (1 - done_t)``::

        delta_t = rho_t * (r_t + g_t * V_{t+1} - V_t)
        adv_t   = rho_t * (r_t + g_t * vs_{t+1} - V_t)
        vs_t    = V_t + delta_t + g_t * c_t * (vs_{t+1} - V_{t+1})

    ``min`` propagates NaN ratios as ``torch.min`` does. Invalid steps take part like any other (Sample Factory's
    V-trace has no valids): the learner masks them in the losses. Sample Factory asserts ``recurrence > 1``;
    ``T = 1`` is accepted here and follows the same formulas.

    Computation: float32, under no-grad mode; the caps become float32 as Sample Factory's
    ``torch.Tensor([vtrace_rho])`` does. CPU tensors run loops that reproduce Sample Factory's tensor code to the
    bit where the compiler does not fuse multiply-adds (x86-64 builds); every other device runs a device-generic
    kernel of ATen ops, one fused op per time step (it recurses on ``vs - V``; CUDA too). The two agree to float32
    rounding. CPU work runs on the calling thread with the GIL released.

    Returns:
        ``(vs, advantages)``: the value targets and the advantages, each a new contiguous float32 ``[N, T]`` tensor
        on the inputs' device, without autograd history.

    Raises:
        ValueError: naming the argument, for wrong shapes, ``T < 1``, integer ratios/rewards/values, complex
            flags, inputs on different devices, ``gamma <= 0`` or a non-finite gamma, NaN caps.
    """
    return torch.ops.pysf.vtrace(ratios, rewards, dones, values, gamma, vtrace_rho, vtrace_c)


@torch.jit.script
def calculate_discounted_sum_torch(
    x: Tensor, dones: Tensor, valids: Tensor, discount: float, x_last: Optional[Tensor] = None
) -> Tensor:
    """Discounted sums of ``x`` backwards in time, restarting after episode ends and skipping invalid steps.

    Time-major: ``x``, ``dones`` and ``valids`` are ``[T, ...]`` (e.g. ``[T, num_envs]``). With ``S_T = x_last``
    (zeros when ``None``), backwards::

        S_t = x_t + d_t * (1 - done_t) * S_{t+1},   d_t = discount if valid_t else 1

    so an invalid step does not discount what follows it (``x`` should already be 0 there). ``dones`` and
    ``valids`` may be bool or 0/1 of any dtype. Returns ``[S_0, ..., S_{T-1}]`` with the shape and dtype of ``x``.
    """
    dones_f = dones.to(x.dtype)
    valids_f = valids.to(x.dtype)
    if x_last is None:
        cumulative = torch.zeros_like(x[0])
    else:
        cumulative = x_last
    discounted_sum = torch.zeros_like(x)
    i = x.shape[0] - 1
    while i >= 0:
        discount_valid = discount * valids_f[i] + (1.0 - valids_f[i])
        cumulative = x[i] + discount_valid * cumulative * (1.0 - dones_f[i])
        discounted_sum[i] = cumulative
        i -= 1
    return discounted_sum


DonesType = Union[bool, np.ndarray, Tensor, Sequence[bool]]


def make_dones(terminated: DonesType, truncated: DonesType) -> DonesType:
    """``terminated | truncated`` for what ``env.step`` returns (gymnasium's split of the old ``done``).

    Python/numpy bools, numpy arrays and tensors give the elementwise or of the same kind; a list or tuple (one
    flag per agent of a multi-agent env) gives a list. Both arguments must be of the same kind and shape.

    Raises:
        ValueError: any other type.
    """
    if isinstance(terminated, (bool, np.bool_, np.ndarray, Tensor)):
        return terminated | truncated
    if isinstance(terminated, Sequence) and not isinstance(terminated, (str, bytes)):
        return [t | truncated[i] for i, t in enumerate(terminated)]
    raise ValueError(
        f"make_dones: terminated/truncated must be bools, numpy arrays, tensors or sequences of bools, "
        f"got {type(terminated).__name__}"
    )


def trajectories_per_minibatch(cfg: Config) -> int:
    """Trajectories (of ``--rollout`` steps) in one minibatch of ``--batch_size`` samples."""
    return cfg.batch_size // cfg.rollout


def trajectories_per_training_iteration(cfg: Config) -> int:
    """Trajectories the learner consumes per training iteration (``--num_batches_per_epoch`` minibatches)."""
    return cfg.num_batches_per_epoch * trajectories_per_minibatch(cfg)


def total_num_envs(cfg: Config) -> int:
    """Env instances over all rollout workers."""
    return cfg.num_workers * cfg.num_envs_per_worker


def total_num_agents(cfg: Config, env_info: Any) -> int:
    """Agents over all envs (``env_info``: :class:`pysf.algo.utils.env_info.EnvInfo`)."""
    return total_num_envs(cfg) * env_info.num_agents


def num_agents_per_worker(cfg: Config, env_info: Any) -> int:
    """Agents in the envs of one rollout worker."""
    return cfg.num_envs_per_worker * env_info.num_agents


def prepare_and_normalize_obs(model: nn.Module, obs: Dict[str, Any]) -> Dict[str, Tensor]:
    """Observations ready for ``model.forward_head``: each one a tensor (numpy arrays wrapped without a copy) on
    the model's device for that key, normalized by the model's observation normalizer, and of the model's dtype
    for that key.

    ``model`` is an actor-critic (``device_for_input_tensor``, ``type_for_input_tensor``, ``normalize_obs``).
    As in Sample Factory, the entries of ``obs`` are replaced by the tensors on the model's device (``obs`` is
    modified); the normalized observations are a new dict unless normalization is off.
    """
    for key, x in obs.items():
        device = model.device_for_input_tensor(key)
        tensor = ensure_torch_tensor(x)
        obs[key] = tensor if device is None else tensor.to(device)
    normalized_obs = model.normalize_obs(obs)
    for key, x in normalized_obs.items():
        normalized_obs[key] = x.type(model.type_for_input_tensor(key))
    return normalized_obs


def samples_per_trajectory(trajectory: Dict[str, Any]) -> int:
    """Samples in a batch of trajectories: ``rewards`` is ``[trajectories, rollout]``, so their product."""
    shape = trajectory["rewards"].shape
    return shape[0] * shape[1]
