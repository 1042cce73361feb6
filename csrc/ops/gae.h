// gae_advantages: Sample Factory's generalized advantage estimation with invalid steps, as the learner's
// batch preparation computes it once per training iteration (sample_factory/algo/utils/rl_utils.py:
// gae_advantages + calculate_discounted_sum_torch).
#pragma once

#include <ATen/core/Tensor.h>

#include "ops/common.h"

namespace pysf::ops {

/// GAE advantages of N trajectories of T steps, each step possibly invalid (experience of another policy or
/// too old). Invalid steps are "transparent" in Sample Factory's sense: their own reward and value are masked
/// out and they do not discount (d_t = 1), so the advantage passes through them; note that an invalid step
/// still adds gamma * V_{t+1} when step t+1 is valid (that is Sample Factory's formula, kept as is).
///
/// Arguments (all on one device, any strides):
///   rewards [N, T]    floating point
///   dones   [N, T]    bool, or a real dtype holding 0/1; done_t ends the episode after step t
///   values  [N, T+1]  floating point, denormalized values; column T is the bootstrap value V(s_T)
///   valids  [N, T+1]  bool or real 0/1; column T is the validity of the bootstrap step
///   gamma, gae_lambda  finite
/// For every trajectory, backwards from A_T = 0 (t = T-1 .. 0):
///   delta_t = (r_t - V_t) * valid_t + (1 - done_t) * (gamma * V_{t+1} * valid_{t+1})
///   d_t     = gamma * gae_lambda * valid_t + (1 - valid_t)      (gamma*lambda if valid, 1 if invalid)
///   A_t     = delta_t + d_t * A_{t+1} * (1 - done_t)
/// exactly Sample Factory's formulas; flags are used linearly as there (after `.float()`), so 0/1 flags
/// give the cases in the comments. The learner then forms returns = A + valid * V.
///
/// Returns A as a new contiguous float32 [N, T] tensor on the inputs' device. The computation is in
/// float32 (inputs of other floating dtypes are converted first), under no-grad mode: the result has no
/// autograd history and is an ordinary tensor (not an inference-mode one), usable in later autograd graphs.
///
/// Implementations: CPU tensors (Implementation::Auto) run loops over contiguous float32 data (bool flags are
/// read as stored) that keep Sample Factory's grouping of the float operations, so for 0/1 flags they reproduce
/// its tensor code to the bit where the compiler does not fuse multiply-adds (x86-64 builds: checked in
/// tests/test_rl_ops.py). Anything else, or Implementation::Generic, runs a device-generic version made of ATen
/// tensor ops with one fused op per time step, so CUDA tensors work without custom kernels (there are no
/// dedicated CUDA kernels yet: this is the GPU path). The two agree to float32 rounding. CPU work runs on the
/// calling thread (splitting the batch over torch's intra-op threads gained nothing measurable on 2 cores).
///
/// Throws std::invalid_argument (message names the argument) for undefined tensors, wrong shapes, T < 1,
/// integer rewards/values, complex flags, mixed devices or a non-finite gamma/gae_lambda. N = 0 is allowed.
/// Thread-safe: no state.
[[nodiscard]] at::Tensor gae_advantages(const at::Tensor& rewards, const at::Tensor& dones, const at::Tensor& values,
                                        const at::Tensor& valids, double gamma, double gae_lambda,
                                        Implementation implementation = Implementation::Auto);

}  // namespace pysf::ops
