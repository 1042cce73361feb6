"""Return and advantage estimation for the learner (Sample Factory's ``sample_factory.algo.utils.rl_utils``).

Both functions run native ops (``pysf._C.ops``, csrc/ops) with the GIL released: tight loops for CPU tensors,
a device-generic implementation of ATen tensor ops (one fused op per time step) for any other device.
Results are new float32 tensors on the inputs' device, without autograd history. Shapes are batch-major,
``[N trajectories, T steps]``, as in the trajectory buffers.
"""

from __future__ import annotations

from typing import Tuple

from torch import Tensor

from pysf import _C


def gae_advantages(
    rewards: Tensor,
    dones: Tensor,
    values: Tensor,
    valids: Tensor,
    gamma: float,
    gae_lambda: float,
    *,
    force_generic: bool = False,
) -> Tensor:
    """Sample Factory's GAE advantages with invalid steps (``_prepare_batch``, once per training iteration).

    Args:
        rewards: ``[N, T]`` floating point.
        dones: ``[N, T]`` bool (or 0/1 of a real dtype); ``done_t`` ends the episode after step ``t``.
        values: ``[N, T+1]`` denormalized values; column ``T`` is the bootstrap value.
        valids: ``[N, T+1]`` bool (or 0/1); column ``T`` is the bootstrap step's validity.
        gamma: discount.
        gae_lambda: GAE's lambda.
        force_generic: run the device-generic ATen implementation even for CPU tensors (tests, comparisons).

    For each trajectory, backwards from ``A_T = 0``::

        delta_t = (r_t - V_t) * valid_t + (1 - done_t) * gamma * V_{t+1} * valid_{t+1}
        A_t     = delta_t + (1 - done_t) * d_t * A_{t+1},   d_t = gamma * gae_lambda if valid_t else 1

    so invalid steps are transparent: they add no TD error and do not discount. The learner then forms
    ``returns = A + valids[:, :T] * V[:, :T]``.

    Returns:
        The advantages, float32 ``[N, T]``.

    Raises:
        ValueError: wrong shapes or dtypes, ``T < 1``, inputs on different devices, non-finite gamma/lambda.
    """
    return _C.ops.gae_advantages(rewards, dones, values, valids, gamma, gae_lambda, force_generic=force_generic)


def vtrace(
    ratios: Tensor,
    rewards: Tensor,
    dones: Tensor,
    values: Tensor,
    gamma: float,
    vtrace_rho: float,
    vtrace_c: float,
    *,
    force_generic: bool = False,
) -> Tuple[Tensor, Tensor]:
    """Sample Factory's V-trace targets and advantages (``--with_vtrace``, per minibatch, recurrence == rollout).

    Args:
        ratios: ``[N, T]`` importance ratios pi/mu of the current network, already clamped to [0.05, 20].
        rewards: ``[N, T]`` floating point.
        dones: ``[N, T]`` bool (or 0/1 of a real dtype).
        values: ``[N, T]`` the current network's values; no bootstrap column.
        gamma: discount, > 0.
        vtrace_rho: rho_bar, the cap of the ratios in the TD errors and advantages.
        vtrace_c: c_bar, the cap of the trace-cutting ratios.
        force_generic: run the device-generic ATen implementation even for CPU tensors (tests, comparisons).

    A trajectory of the minibatch is ``T = recurrence`` consecutive rows of the flat minibatch, so the learner
    passes ``x.view(-1, recurrence)``. As in Sample Factory, the value after the last step is reconstructed as
    ``(V_{T-1} - r_{T-1}) / gamma`` and the recursion starts from ``vs_T`` equal to it; backwards, with
    ``rho_t = min(rho_bar, ratio_t)``, ``c_t = min(c_bar, ratio_t)``, ``g_t = gamma * (1 - done_t)``::

        delta_t = rho_t * (r_t + g_t * V_{t+1} - V_t)
        adv_t   = rho_t * (r_t + g_t * vs_{t+1} - V_t)
        vs_t    = V_t + delta_t + g_t * c_t * (vs_{t+1} - V_{t+1})

    Invalid steps take part like any other (Sample Factory's V-trace has no valids): mask them in the losses.

    Returns:
        ``(vs, advantages)``: the value targets and the advantages, each float32 ``[N, T]``.

    Raises:
        ValueError: wrong shapes or dtypes, ``T < 1``, inputs on different devices, ``gamma <= 0``, NaN caps.
    """
    return _C.ops.vtrace(ratios, rewards, dones, values, gamma, vtrace_rho, vtrace_c, force_generic=force_generic)
