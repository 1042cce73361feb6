// vtrace: Sample Factory's V-trace value targets and advantages, as its learner computes them per minibatch
// when --with_vtrace is set (sample_factory/algo/learning/learner.py, Learner._calculate_losses).
#pragma once

#include <ATen/core/Tensor.h>

#include "ops/common.h"

namespace pysf::ops {

/// V-trace targets and policy-gradient advantages of the result.
struct VTraceResult {
  at::Tensor vs;          ///< value targets v_s, float32 [N, T]
  at::Tensor advantages;  ///< rho_t * (r_t + gamma * (1 - done_t) * v_{s,t+1} - V_t), float32 [N, T]
};

/// V-trace over N trajectories of T = recurrence (= rollout) steps each, with the current network's values.
///
/// Arguments (all on one device, any strides):
///   ratios  [N, T]  floating point, pi/mu importance ratios (the learner clamps them to [0.05, 20] first)
///   rewards [N, T]  floating point
///   dones   [N, T]  bool, or a real dtype holding 0/1
///   values  [N, T]  floating point, the current network's values; there is no bootstrap column
///   gamma > 0 (finite), vtrace_rho = rho_bar, vtrace_c = c_bar (the caps of the truncated ratios)
/// Edge handling, exactly as Sample Factory's learner:
///   - the value after the last step of each trajectory is reconstructed from the last step itself,
///       V_T = (V_{T-1} - r_{T-1}) / gamma,
///     (so for a non-terminal last step delta_{T-1} = 0 up to rounding), and the recursion starts from
///     v_{s,T} = V_T; done_{T-1} still cuts the bootstrap off as usual;
///   - invalid steps are not special: Sample Factory's V-trace takes no valids, every step (valid or not)
///     enters the recursion with its ratio, reward and value, and the learner masks invalid samples out of
///     the losses and the advantage normalization afterwards. Hence no valids argument here.
/// For t = T-1 .. 0, with rho_t = min(rho_bar, ratio_t), c_t = min(c_bar, ratio_t), g_t = gamma * (1 - done_t):
///   delta_t  = rho_t * (r_t + g_t * V_{t+1} - V_t)
///   adv_t    = rho_t * (r_t + g_t * v_{s,t+1} - V_t)
///   v_{s,t}  = V_t + delta_t + g_t * c_t * (v_{s,t+1} - V_{t+1})
/// min() propagates NaN ratios as torch.min does. Sample Factory asserts recurrence > 1; T = 1 is accepted
/// here and follows the same formulas.
///
/// Returns new contiguous float32 [N, T] tensors on the inputs' device, computed in float32 under no-grad
/// mode (ordinary tensors without autograd history: usable in later autograd graphs).
///
/// Implementations: CPU tensors (Implementation::Auto) run loops over contiguous float32 data that keep Sample
/// Factory's grouping of the float operations, so they reproduce its tensor code to the bit where the
/// compiler does not fuse multiply-adds (x86-64 builds: checked in tests/test_rl_ops.py). Anything else, or
/// Implementation::Generic, runs a device-generic version made of ATen tensor ops with one fused op per time
/// step (it recurses on v_s - V), so CUDA tensors work without custom kernels (there are no dedicated CUDA
/// kernels yet: this is the GPU path). The two agree to float32 rounding. CPU work runs on the calling thread
/// (splitting the batch over torch's intra-op threads gained nothing measurable on 2 cores).
///
/// Throws std::invalid_argument (message names the argument) for undefined tensors, wrong shapes, T < 1,
/// integer ratios/rewards/values, complex flags, mixed devices, gamma <= 0 or non-finite gamma (the bootstrap
/// divides by it), or NaN caps. N = 0 is allowed. Thread-safe: no state.
[[nodiscard]] VTraceResult vtrace(const at::Tensor& ratios, const at::Tensor& rewards, const at::Tensor& dones,
                                  const at::Tensor& values, double gamma, double vtrace_rho, double vtrace_c,
                                  Implementation implementation = Implementation::Auto);

}  // namespace pysf::ops
