// The kernels behind the torch.ops.pysf operators, for registration.cpp, which binds them to dispatch keys.
// Call the operators (ops/gae.h, ops/vtrace.h, torch.ops.pysf.*), not these: the dispatcher picks the kernel.
//
// Every kernel checks its arguments (throwing c10::ValueError), so each one, whichever device picked it,
// rejects the same mistakes with the same message. Results never carry autograd history (the kernels compute
// under no-grad mode; registration.cpp lets autograd fall through).
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace pysf::ops::kernels {

// ---- pysf::gae_advantages ---------------------------------------------------------------------------------

/// CPU: loops over contiguous float32 rows that keep Sample Factory's grouping of the float operations.
at::Tensor gae_advantages_cpu(const at::Tensor& rewards, const at::Tensor& dones, const at::Tensor& values,
                              const at::Tensor& valids, double gamma, double gae_lambda);
/// Any device: ATen tensor ops, one fused op per time step.
at::Tensor gae_advantages_generic(const at::Tensor& rewards, const at::Tensor& dones, const at::Tensor& values,
                                  const at::Tensor& valids, double gamma, double gae_lambda);
/// Meta (shapes only, fake tensors of torch.compile / torch.export): the checks and an empty result.
at::Tensor gae_advantages_meta(const at::Tensor& rewards, const at::Tensor& dones, const at::Tensor& values,
                               const at::Tensor& valids, double gamma, double gae_lambda);

// ---- pysf::vtrace: returns (vs, advantages) ---------------------------------------------------------------

/// CPU: flat elementwise passes around interleaved recursions, Sample Factory's grouping of the operations.
std::tuple<at::Tensor, at::Tensor> vtrace_cpu(const at::Tensor& ratios, const at::Tensor& rewards,
                                              const at::Tensor& dones, const at::Tensor& values, double gamma,
                                              double vtrace_rho, double vtrace_c);
/// Any device: ATen tensor ops, one fused op per time step (the recursion on vs - V).
std::tuple<at::Tensor, at::Tensor> vtrace_generic(const at::Tensor& ratios, const at::Tensor& rewards,
                                                  const at::Tensor& dones, const at::Tensor& values, double gamma,
                                                  double vtrace_rho, double vtrace_c);
/// Meta: the checks and empty results.
std::tuple<at::Tensor, at::Tensor> vtrace_meta(const at::Tensor& ratios, const at::Tensor& rewards,
                                               const at::Tensor& dones, const at::Tensor& values, double gamma,
                                               double vtrace_rho, double vtrace_c);

}  // namespace pysf::ops::kernels
