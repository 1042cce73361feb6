// vtrace: Sample Factory's V-trace value targets and advantages, as its learner computes them per minibatch when
// --with_vtrace is set; the operator torch.ops.pysf.vtrace.
//
// The contract (shapes, formulas, dtypes, devices, errors) is documented once, in the Python wrapper:
// pysf/algo/utils/rl_utils.py, vtrace. C++-side facts only here.
#pragma once

#include <ATen/core/Tensor.h>

namespace pysf::ops {

/// The operator's two results, named (the operator itself returns the tuple (vs, advantages)).
struct VTraceResult {
  at::Tensor vs;          ///< value targets v_s, float32 [N, T]
  at::Tensor advantages;  ///< policy-gradient advantages, float32 [N, T]
};

/// Calls the operator pysf::vtrace through the dispatcher, which picks the kernel for the inputs' device
/// (registration.cpp). Throws c10::ValueError (message names the argument) for bad arguments. Thread-safe.
[[nodiscard]] VTraceResult vtrace(const at::Tensor& ratios, const at::Tensor& rewards, const at::Tensor& dones,
                                  const at::Tensor& values, double gamma, double vtrace_rho, double vtrace_c);

}  // namespace pysf::ops
