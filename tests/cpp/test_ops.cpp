// Tests of the learner's return/advantage operators pysf::gae_advantages and pysf::vtrace (csrc/ops) through
// the dispatcher: their registration, hand-computed GAE and V-trace cases in the CPU kernel and in the
// device-generic kernel, the two against each other on a random batch, Meta tensors, argument errors. The full
// comparison with plain-Python references is tests/algo/utils/test_rl_ops.py.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "check.h"
#include "ops/gae.h"
#include "ops/vtrace.h"

using pysf::ops::VTraceResult;

namespace {

// The device-generic kernel (CompositeExplicitAutograd, what devices without their own kernel run), called
// directly by its dispatch key so that it runs on CPU tensors too.
std::vector<c10::IValue> call_generic(const char* op_name, std::vector<c10::IValue> stack) {
  const c10::OperatorHandle op = c10::Dispatcher::singleton().findSchemaOrThrow(op_name, "");
  op.callBoxedForDispatchKey(c10::DispatchKey::CompositeExplicitAutograd, stack);
  return stack;
}

at::Tensor generic_gae_advantages(const at::Tensor& rewards, const at::Tensor& dones, const at::Tensor& values,
                                  const at::Tensor& valids, double gamma, double gae_lambda) {
  return call_generic("pysf::gae_advantages", {rewards, dones, values, valids, gamma, gae_lambda}).at(0).toTensor();
}

VTraceResult generic_vtrace(const at::Tensor& ratios, const at::Tensor& rewards, const at::Tensor& dones,
                            const at::Tensor& values, double gamma, double vtrace_rho, double vtrace_c) {
  const std::vector<c10::IValue> results =
      call_generic("pysf::vtrace", {ratios, rewards, dones, values, gamma, vtrace_rho, vtrace_c});
  return VTraceResult{results.at(0).toTensor(), results.at(1).toTensor()};
}

// Both kernels CPU tensors can reach: the operator (the dispatcher picks the CPU kernel) and the generic one.
struct Kernels {
  const char* name;
  std::function<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                           double)>
      gae;
  std::function<VTraceResult(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                             double, double)>
      vtrace;
};

const Kernels kBoth[] = {{"cpu", &pysf::ops::gae_advantages, &pysf::ops::vtrace},
                         {"generic", &generic_gae_advantages, &generic_vtrace}};

at::Tensor row(const std::vector<float>& data) {
  return at::tensor(data, at::kFloat).reshape({1, static_cast<std::int64_t>(data.size())});
}

at::Tensor bool_row(const std::vector<bool>& data) {
  std::vector<std::uint8_t> bytes(data.begin(), data.end());
  return at::tensor(bytes, at::kByte).to(at::kBool).reshape({1, static_cast<std::int64_t>(data.size())});
}

bool equals(const at::Tensor& actual, const std::vector<float>& expected) {
  return actual.dtype() == at::kFloat && at::equal(actual, row(expected));
}

std::string text(const at::Tensor& tensor) {
  std::ostringstream out;
  out << tensor;
  return out.str();
}

}  // namespace

TEST_CASE(operators_are_registered_with_their_kernels) {
  // Linking pysf_core (which links pysf_ops whole-archive) is all it takes: nothing here names a kernel.
  for (const char* name : {"pysf::gae_advantages", "pysf::vtrace"}) {
    const c10::OperatorHandle op = c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
    for (const c10::DispatchKey key :
         {c10::DispatchKey::CPU, c10::DispatchKey::CompositeExplicitAutograd, c10::DispatchKey::Meta}) {
      EXPECT_MSG(op.hasKernelForDispatchKey(key), std::string(name) + " " + c10::toString(key));
    }
  }
}

TEST_CASE(gae_hand_computed_episode_end_and_invalid_step) {
  const at::Tensor rewards = row({1, 2, 4});
  const at::Tensor values = row({1, 2, 3, 8});
  for (const Kernels& kernels : kBoth) {
    // gamma = lambda = 0.5. Episode ends after step 1: A2 = 4 - 3 + 0.5 * 8 = 5, A1 = 2 - 2 = 0, A0 = 1 - 1 + 0.5 * 2.
    const at::Tensor adv =
        kernels.gae(rewards, bool_row({false, true, false}), values, bool_row({true, true, true, true}), 0.5, 0.5);
    EXPECT_MSG(equals(adv, {1, 0, 5}), std::string(kernels.name) + ": " + text(adv));
    // Step 1 invalid: A1 = 0.5 * 3 + 1 * A2 = 6.5 (no discount), A0 = (1 - 1) + 0.25 * 6.5 (no bootstrap from V1).
    const at::Tensor adv_invalid = kernels.gae(rewards, at::zeros({1, 3}), values, row({1, 0, 1, 1}), 0.5, 0.5);
    EXPECT_MSG(equals(adv_invalid, {1.625F, 6.5F, 5}), std::string(kernels.name) + ": " + text(adv_invalid));
  }
}

TEST_CASE(vtrace_hand_computed_with_capped_ratios) {
  const at::Tensor ratios = row({2.0F, 0.5F, 1.0F});
  const at::Tensor rewards = row({1, 2, 4});
  const at::Tensor values = row({1, 2, 3});
  for (const Kernels& kernels : kBoth) {
    // gamma 0.5, caps 1; bootstrap V3 = (3 - 4) / 0.5 = -2, so the last step has no TD error.
    const VTraceResult result = kernels.vtrace(ratios, rewards, at::zeros({1, 3}), values, 0.5, 1.0, 1.0);
    EXPECT_MSG(equals(result.vs, {2.375F, 2.75F, 3}), text(result.vs));
    EXPECT_MSG(equals(result.advantages, {1.375F, 0.75F, 0}), text(result.advantages));
    // A terminal last step: no bootstrap at all.
    const VTraceResult terminal =
        kernels.vtrace(ratios, rewards, bool_row({false, false, true}), values, 0.5, 1.0, 1.0);
    EXPECT_MSG(equals(terminal.vs, {2.5F, 3, 4}), text(terminal.vs));
    EXPECT_MSG(equals(terminal.advantages, {1.5F, 1, 1}), text(terminal.advantages));
  }
}

TEST_CASE(cpu_loops_agree_with_generic_aten_version_on_a_random_batch) {
  at::manual_seed(7);
  const std::int64_t n = 1027;  // not a multiple of the CPU loops' block sizes
  const std::int64_t t = 33;
  const at::Tensor rewards = at::randn({n, t});
  const at::Tensor dones = at::rand({n, t}) < 0.05;
  const at::Tensor values = at::randn({n, t + 1}) * 3;
  const at::Tensor valids = at::rand({n, t + 1}) < 0.9;
  const at::Tensor fast = pysf::ops::gae_advantages(rewards, dones, values, valids, 0.99, 0.95);
  const at::Tensor generic = generic_gae_advantages(rewards, dones, values, valids, 0.99, 0.95);
  EXPECT(fast.sizes() == generic.sizes());
  EXPECT_MSG(at::allclose(fast, generic, 1e-5, 1e-5), std::to_string((fast - generic).abs().max().item<float>()));

  const at::Tensor ratios = at::exp(at::randn({n, t}) * 0.7).clamp(0.05, 20.0);
  const at::Tensor v = values.narrow(1, 0, t);  // non-contiguous on purpose
  const VTraceResult fast_v = pysf::ops::vtrace(ratios, rewards, dones, v, 0.99, 1.0, 0.9);
  const VTraceResult generic_v = generic_vtrace(ratios, rewards, dones, v, 0.99, 1.0, 0.9);
  EXPECT(at::allclose(fast_v.vs, generic_v.vs, 1e-5, 1e-5));
  EXPECT(at::allclose(fast_v.advantages, generic_v.advantages, 1e-5, 1e-5));
  EXPECT(fast_v.vs.is_contiguous() && generic_v.advantages.is_contiguous());
}

TEST_CASE(meta_tensors_give_shapes_only) {
  const auto meta = at::TensorOptions().device(at::kMeta);
  const at::Tensor adv = pysf::ops::gae_advantages(at::empty({5, 3}, meta), at::empty({5, 3}, meta.dtype(at::kBool)),
                                                   at::empty({5, 4}, meta), at::empty({5, 4}, meta), 0.99, 0.95);
  EXPECT(adv.is_meta() && adv.sizes() == at::IntArrayRef({5, 3}) && adv.dtype() == at::kFloat);
  const at::Tensor x = at::empty({5, 3}, meta.dtype(at::kDouble));
  const VTraceResult result = pysf::ops::vtrace(x, x, x, x, 0.99, 1.0, 1.0);
  EXPECT(result.vs.is_meta() && result.advantages.sizes() == at::IntArrayRef({5, 3}));
  EXPECT(result.vs.dtype() == at::kFloat);
  // The Meta kernels check the arguments like every other kernel.
  EXPECT_THROWS(pysf::ops::vtrace(x, x, x, at::empty({5, 4}, meta), 0.99, 1.0, 1.0), c10::ValueError,
                "vtrace: values must have shape [N, T] (no bootstrap column) = [5, 3], got [5, 4]");
}

TEST_CASE(argument_errors_name_the_argument) {
  const at::Tensor x = at::zeros({2, 3});
  const at::Tensor x1 = at::zeros({2, 4});
  EXPECT_THROWS(pysf::ops::gae_advantages(x, x, x, x1, 0.99, 0.95), c10::ValueError,
                "gae_advantages: values must have shape [N, T+1] = [2, 4], got [2, 3]");
  EXPECT_THROWS(pysf::ops::gae_advantages(x.to(at::kLong), x, x1, x1, 0.99, 0.95), c10::ValueError,
                "rewards must have a floating-point dtype");
  EXPECT_THROWS(pysf::ops::gae_advantages(at::Tensor(), x, x1, x1, 0.99, 0.95), c10::ValueError,
                "rewards is an undefined tensor");
  EXPECT_THROWS(pysf::ops::gae_advantages(x, x, x1, x1, 0.99, std::nan("")), c10::ValueError,
                "gae_lambda must be finite");
  EXPECT_THROWS(generic_gae_advantages(x, x, x, x1, 0.99, 0.95), c10::ValueError,
                "gae_advantages: values must have shape [N, T+1] = [2, 4], got [2, 3]");
  EXPECT_THROWS(pysf::ops::vtrace(x, x, x, x1, 0.99, 1.0, 1.0), c10::ValueError,
                "vtrace: values must have shape [N, T] (no bootstrap column)");
  EXPECT_THROWS(pysf::ops::vtrace(x, x, x, x, 0.0, 1.0, 1.0), c10::ValueError, "gamma must be finite and > 0");
  EXPECT_THROWS(pysf::ops::vtrace(x, x, x.to(at::kComplexFloat), x, 0.99, 1.0, 1.0), c10::ValueError,
                "dones must be bool or a real dtype");
}
