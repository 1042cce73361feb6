// Tests of the learner's return/advantage ops (csrc/ops): hand-computed GAE and V-trace cases in both
// implementations, the fast CPU loops against the device-generic ATen version on a random batch, argument
// errors. The full comparison with plain-Python references is tests/test_rl_ops.py.
#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "ops/gae.h"
#include "ops/vtrace.h"

using pysf::ops::gae_advantages;
using pysf::ops::Implementation;
using pysf::ops::vtrace;
using pysf::ops::VTraceResult;

namespace {

constexpr Implementation kBoth[] = {Implementation::Auto, Implementation::Generic};

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

TEST_CASE(gae_hand_computed_episode_end_and_invalid_step) {
  const at::Tensor rewards = row({1, 2, 4});
  const at::Tensor values = row({1, 2, 3, 8});
  for (const Implementation implementation : kBoth) {
    // gamma = lambda = 0.5. Episode ends after step 1: A2 = 4 - 3 + 0.5 * 8 = 5, A1 = 2 - 2 = 0, A0 = 1 - 1 + 0.5 * 2.
    const at::Tensor adv = gae_advantages(rewards, bool_row({false, true, false}), values,
                                          bool_row({true, true, true, true}), 0.5, 0.5, implementation);
    EXPECT_MSG(equals(adv, {1, 0, 5}), text(adv));
    // Step 1 invalid: A1 = 0.5 * 3 + 1 * A2 = 6.5 (no discount), A0 = (1 - 1) + 0.25 * 6.5 (no bootstrap from V1).
    const at::Tensor adv_invalid = gae_advantages(rewards, at::zeros({1, 3}), values, row({1, 0, 1, 1}), 0.5, 0.5,
                                                  implementation);
    EXPECT_MSG(equals(adv_invalid, {1.625F, 6.5F, 5}), text(adv_invalid));
  }
}

TEST_CASE(vtrace_hand_computed_with_capped_ratios) {
  const at::Tensor ratios = row({2.0F, 0.5F, 1.0F});
  const at::Tensor rewards = row({1, 2, 4});
  const at::Tensor values = row({1, 2, 3});
  for (const Implementation implementation : kBoth) {
    // gamma 0.5, caps 1; bootstrap V3 = (3 - 4) / 0.5 = -2, so the last step has no TD error.
    const VTraceResult result = vtrace(ratios, rewards, at::zeros({1, 3}), values, 0.5, 1.0, 1.0, implementation);
    EXPECT_MSG(equals(result.vs, {2.375F, 2.75F, 3}), text(result.vs));
    EXPECT_MSG(equals(result.advantages, {1.375F, 0.75F, 0}), text(result.advantages));
    // A terminal last step: no bootstrap at all.
    const VTraceResult terminal =
        vtrace(ratios, rewards, bool_row({false, false, true}), values, 0.5, 1.0, 1.0, implementation);
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
  const at::Tensor fast = gae_advantages(rewards, dones, values, valids, 0.99, 0.95);
  const at::Tensor generic = gae_advantages(rewards, dones, values, valids, 0.99, 0.95, Implementation::Generic);
  EXPECT(fast.sizes() == generic.sizes());
  EXPECT_MSG(at::allclose(fast, generic, 1e-5, 1e-5), std::to_string((fast - generic).abs().max().item<float>()));

  const at::Tensor ratios = at::exp(at::randn({n, t}) * 0.7).clamp(0.05, 20.0);
  const at::Tensor v = values.narrow(1, 0, t);  // non-contiguous on purpose
  const VTraceResult fast_v = vtrace(ratios, rewards, dones, v, 0.99, 1.0, 0.9);
  const VTraceResult generic_v = vtrace(ratios, rewards, dones, v, 0.99, 1.0, 0.9, Implementation::Generic);
  EXPECT(at::allclose(fast_v.vs, generic_v.vs, 1e-5, 1e-5));
  EXPECT(at::allclose(fast_v.advantages, generic_v.advantages, 1e-5, 1e-5));
  EXPECT(fast_v.vs.is_contiguous() && generic_v.advantages.is_contiguous());
}

TEST_CASE(argument_errors_name_the_argument) {
  const at::Tensor x = at::zeros({2, 3});
  const at::Tensor x1 = at::zeros({2, 4});
  EXPECT_THROWS(gae_advantages(x, x, x, x1, 0.99, 0.95), std::invalid_argument,
                "gae_advantages: values must have shape [N, T+1] = [2, 4], got [2, 3]");
  EXPECT_THROWS(gae_advantages(x.to(at::kLong), x, x1, x1, 0.99, 0.95), std::invalid_argument,
                "rewards must have a floating-point dtype");
  EXPECT_THROWS(gae_advantages(at::Tensor(), x, x1, x1, 0.99, 0.95), std::invalid_argument,
                "rewards is an undefined tensor");
  EXPECT_THROWS(gae_advantages(x, x, x1, x1, 0.99, std::nan("")), std::invalid_argument, "gae_lambda must be finite");
  EXPECT_THROWS(vtrace(x, x, x, x1, 0.99, 1.0, 1.0), std::invalid_argument,
                "vtrace: values must have shape [N, T] (no bootstrap column)");
  EXPECT_THROWS(vtrace(x, x, x, x, 0.0, 1.0, 1.0), std::invalid_argument, "gamma must be finite and > 0");
  EXPECT_THROWS(vtrace(x, x, x.to(at::kComplexFloat), x, 0.99, 1.0, 1.0), std::invalid_argument,
                "dones must be bool or a real dtype");
}

int main() { return pysf::test::run_all_tests(); }
