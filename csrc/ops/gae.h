// gae_advantages: Sample Factory's generalized advantage estimation with invalid steps, as the learner's batch
// preparation computes it once per training iteration; the operator torch.ops.pysf.gae_advantages.
//
// The contract (shapes, formulas, dtypes, devices, errors) is documented once, in the Python wrapper:
// pysf/algo/utils/rl_utils.py, gae_advantages. C++-side facts only here.
#pragma once

#include <ATen/core/Tensor.h>

namespace pysf::ops {

/// Calls the operator pysf::gae_advantages through the dispatcher, which picks the kernel for the inputs'
/// device (registration.cpp). Throws c10::ValueError (message names the argument) for bad arguments.
/// Thread-safe: no state.
[[nodiscard]] at::Tensor gae_advantages(const at::Tensor& rewards, const at::Tensor& dones, const at::Tensor& values,
                                        const at::Tensor& valids, double gamma, double gae_lambda);

}  // namespace pysf::ops
