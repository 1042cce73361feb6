// The torch.ops.pysf operator library: every schema, once, and the kernel each dispatch key runs; plus the
// C++ entry points (ops/gae.h, ops/vtrace.h), which call the operators through the dispatcher.
//
// Kernels (ops/kernels.h) per dispatch key:
//   CPU                        the fast loops (gae.cpp, vtrace.cpp).
//   CompositeExplicitAutograd  the device-generic ATen kernels: every backend without a kernel of its own runs
//                              them. "Explicit" so that the operator stays one node in torch.compile /
//                              torch.export graphs and the CPU kernel is not bypassed; a CompositeImplicitAutograd
//                              kernel would be decomposed into its T-step loop of ATen ops when traced.
//   CUDA                       the slot for a dedicated CUDA kernel, compiled only when torch has CUDA (CMake
//                              defines PYSF_WITH_CUDA). There is no hand-written CUDA kernel yet: the slot
//                              registers the generic kernel, so CUDA tensors run exactly what other devices run.
//   Meta                       shape functions (the same argument checks, an empty result), which fake tensors of
//                              torch.compile / torch.export run; sizes may be symbolic (dynamic shapes).
//   Autograd                   fall through: the results are constants without autograd history (the kernels
//                              compute under no-grad mode). Without this, torch's autograd fallback would attach a
//                              "not implemented" backward to results of inputs that require grad.
//
// Tests compare the CPU kernel with the generic one on CPU tensors by calling the kernel registered for the
// CompositeExplicitAutograd key directly (OperatorHandle::callBoxedForDispatchKey in C++, OpOverload._op_dk in
// Python, the way torch's own OpOverload.decompose reaches a composite kernel): the very kernel other devices
// run, with no second, test-only operator.
//
// Linking: this file registers through static initializers that nothing references by name, and pysf_ops is a
// static library, so CMakeLists.txt links it whole-archive into everything that links pysf_core (pysf._C, whose
// import registers the operators, and the C++ tests).
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <tuple>
#include <utility>

#include "ops/gae.h"
#include "ops/kernels.h"
#include "ops/vtrace.h"

TORCH_LIBRARY(pysf, m) {
  m.def("gae_advantages(Tensor rewards, Tensor dones, Tensor values, Tensor valids, float gamma, float gae_lambda)"
        " -> Tensor");
  m.def("vtrace(Tensor ratios, Tensor rewards, Tensor dones, Tensor values, float gamma, float vtrace_rho,"
        " float vtrace_c) -> (Tensor vs, Tensor advantages)");
}

TORCH_LIBRARY_IMPL(pysf, CPU, m) {
  m.impl("gae_advantages", &pysf::ops::kernels::gae_advantages_cpu);
  m.impl("vtrace", &pysf::ops::kernels::vtrace_cpu);
}

TORCH_LIBRARY_IMPL(pysf, CompositeExplicitAutograd, m) {
  m.impl("gae_advantages", &pysf::ops::kernels::gae_advantages_generic);
  m.impl("vtrace", &pysf::ops::kernels::vtrace_generic);
}

#ifdef PYSF_WITH_CUDA
TORCH_LIBRARY_IMPL(pysf, CUDA, m) {
  m.impl("gae_advantages", &pysf::ops::kernels::gae_advantages_generic);
  m.impl("vtrace", &pysf::ops::kernels::vtrace_generic);
}
#endif

TORCH_LIBRARY_IMPL(pysf, Meta, m) {
  m.impl("gae_advantages", &pysf::ops::kernels::gae_advantages_meta);
  m.impl("vtrace", &pysf::ops::kernels::vtrace_meta);
}

TORCH_LIBRARY_IMPL(pysf, Autograd, m) {
  m.impl("gae_advantages", torch::CppFunction::makeFallthrough());
  m.impl("vtrace", torch::CppFunction::makeFallthrough());
}

namespace pysf::ops {

at::Tensor gae_advantages(const at::Tensor& rewards, const at::Tensor& dones, const at::Tensor& values,
                          const at::Tensor& valids, double gamma, double gae_lambda) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("pysf::gae_advantages", "")
                             .typed<decltype(kernels::gae_advantages_cpu)>();
  return op.call(rewards, dones, values, valids, gamma, gae_lambda);
}

VTraceResult vtrace(const at::Tensor& ratios, const at::Tensor& rewards, const at::Tensor& dones,
                    const at::Tensor& values, double gamma, double vtrace_rho, double vtrace_c) {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("pysf::vtrace", "").typed<decltype(kernels::vtrace_cpu)>();
  auto [vs, advantages] = op.call(ratios, rewards, dones, values, gamma, vtrace_rho, vtrace_c);
  return VTraceResult{std::move(vs), std::move(advantages)};
}

}  // namespace pysf::ops
