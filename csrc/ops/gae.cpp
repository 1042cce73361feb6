// pysf::gae_advantages kernels: vectorized passes and interleaved recursions for CPU tensors, a time-step loop
// of ATen ops for any device, shapes only for Meta. Registered in registration.cpp.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ops/common.h"
#include "ops/kernels.h"

namespace pysf::ops::kernels {

namespace {

constexpr std::string_view kGaeOp = "gae_advantages";

detail::BatchShape check_inputs(const at::Tensor& rewards, const at::Tensor& dones, const at::Tensor& values,
                                const at::Tensor& valids, double gamma, double gae_lambda) {
  const detail::BatchShape shape = detail::check_batch(kGaeOp, "rewards", rewards);
  detail::check_shape(kGaeOp, "dones", dones, shape.rows, shape.steps, "[N, T]");
  detail::check_shape(kGaeOp, "values", values, shape.rows, shape.steps + 1, "[N, T+1]");
  detail::check_shape(kGaeOp, "valids", valids, shape.rows, shape.steps + 1, "[N, T+1]");
  detail::check_floating(kGaeOp, "rewards", rewards);
  detail::check_floating(kGaeOp, "values", values);
  detail::check_flags(kGaeOp, "dones", dones);
  detail::check_flags(kGaeOp, "valids", valids);
  detail::check_same_device(kGaeOp, rewards, {{"dones", dones}, {"values", values}, {"valids", valids}});
  if (!std::isfinite(gamma)) detail::fail(kGaeOp, "gamma", "must be finite, got " + std::to_string(gamma));
  if (!std::isfinite(gae_lambda)) {
    detail::fail(kGaeOp, "gae_lambda", "must be finite, got " + std::to_string(gae_lambda));
  }
  return shape;
}

// ---- CPU: contiguous rows, an elementwise pass, then the recursion for blocks of trajectories at once ----

using detail::flag_value;

// Pass 1 over one trajectory: the TD errors (into `deltas`) and the factors in front of A_{t+1} (into
// `factors`). Elementwise along the contiguous row, so the compiler vectorizes it. Flags are read in their
// own storage type (bool is what the rollout buffers hold), so the common case needs no float copy of them.
template <typename DoneT, typename ValidT>
void gae_terms(const float* __restrict__ rewards, const DoneT* __restrict__ dones, const float* __restrict__ values,
               const ValidT* __restrict__ valids, std::int64_t steps, float gamma, float gamma_lambda,
               float* __restrict__ deltas, float* __restrict__ factors) {
  for (std::int64_t t = 0; t < steps; ++t) {
    const float valid_t = flag_value(valids[t]);
    const float not_done = 1.0F - flag_value(dones[t]);
    // Same grouping of the operations as Sample Factory's tensor expressions.
    deltas[t] = (rewards[t] - values[t]) * valid_t + not_done * (gamma * values[t + 1] * flag_value(valids[t + 1]));
    // Sample Factory multiplies discount * A * not_done; for 0/1 flags this grouping gives the same bits.
    factors[t] = (gamma_lambda * valid_t + (1.0F - valid_t)) * not_done;
  }
}

// Pass 2 over `kLanes` consecutive trajectories at once: A_t = delta_t + factor_t * A_{t+1}, in place over
// the deltas. Each trajectory is a chain of dependent multiply-adds; advancing several independent chains
// together lets the CPU overlap them instead of waiting on each one's latency.
template <int kLanes>
void gae_recurse(float* __restrict__ advantages, const float* __restrict__ factors, std::int64_t steps) {
  float advantage[kLanes] = {};  // A_T = 0
  for (std::int64_t t = steps - 1; t >= 0; --t) {
    for (int lane = 0; lane < kLanes; ++lane) {
      const std::int64_t i = lane * steps + t;
      advantage[lane] = advantages[i] + factors[i] * advantage[lane];
      advantages[i] = advantage[lane];
    }
  }
}

template <typename DoneT, typename ValidT>
void gae_cpu_rows(const float* rewards, const DoneT* dones, const float* values, const ValidT* valids,
                  std::int64_t rows, std::int64_t steps, float gamma, float gamma_lambda, float* advantages) {
  std::vector<float> factors(static_cast<std::size_t>(detail::kLanes * steps));
  for (std::int64_t block = 0; block < rows; block += detail::kLanes) {
    const std::int64_t lanes = std::min<std::int64_t>(detail::kLanes, rows - block);
    for (std::int64_t lane = 0; lane < lanes; ++lane) {
      const std::int64_t row = block + lane;
      gae_terms(rewards + row * steps, dones + row * steps, values + row * (steps + 1), valids + row * (steps + 1),
                steps, gamma, gamma_lambda, advantages + row * steps, factors.data() + lane * steps);
    }
    float* block_out = advantages + block * steps;
    if (lanes == detail::kLanes) {
      gae_recurse<detail::kLanes>(block_out, factors.data(), steps);
    } else {
      for (std::int64_t lane = 0; lane < lanes; ++lane) {
        gae_recurse<1>(block_out + lane * steps, factors.data() + lane * steps, steps);
      }
    }
  }
}

// ---- any device: vectorized TD errors and discounts, then one fused op per time step ---------------------

at::Tensor gae_generic_compute(const at::Tensor& rewards_in, const at::Tensor& dones_in, const at::Tensor& values_in,
                               const at::Tensor& valids_in, std::int64_t steps, double gamma, double gae_lambda) {
  using at::indexing::Slice;
  const at::Tensor rewards = rewards_in.to(at::kFloat);
  const at::Tensor dones = dones_in.to(at::kFloat);
  const at::Tensor values = values_in.to(at::kFloat);
  const at::Tensor valids = valids_in.to(at::kFloat);

  const at::Tensor values_t = values.index({Slice(), Slice(0, steps)});
  const at::Tensor values_next = values.index({Slice(), Slice(1, steps + 1)});
  const at::Tensor valids_t = valids.index({Slice(), Slice(0, steps)});
  const at::Tensor valids_next = valids.index({Slice(), Slice(1, steps + 1)});
  const at::Tensor not_done = 1.0 - dones;

  const at::Tensor deltas = (rewards - values_t) * valids_t + not_done * (gamma * values_next * valids_next);
  // The whole factor in front of A_{t+1}: discount (gamma*lambda if valid, else 1) times not-done.
  const at::Tensor factors = (gamma * gae_lambda * valids_t + (1.0 - valids_t)) * not_done;

  // Time-major so each step reads and writes one contiguous row of N elements.
  const at::Tensor deltas_tm = deltas.t().contiguous();
  const at::Tensor factors_tm = factors.t().contiguous();
  at::Tensor advantages_tm = at::empty_like(deltas_tm);
  advantages_tm[steps - 1].copy_(deltas_tm[steps - 1]);  // A_{T-1} = delta_{T-1} + factor * A_T, A_T = 0
  for (std::int64_t t = steps - 2; t >= 0; --t) {
    at::Tensor out_t = advantages_tm[t];
    at::addcmul_out(out_t, deltas_tm[t], factors_tm[t], advantages_tm[t + 1]);
  }
  return advantages_tm.t().contiguous();
}

}  // namespace

at::Tensor gae_advantages_cpu(const at::Tensor& rewards, const at::Tensor& dones, const at::Tensor& values,
                              const at::Tensor& valids, double gamma, double gae_lambda) {
  const detail::BatchShape shape = check_inputs(rewards, dones, values, valids, gamma, gae_lambda);
  // No-grad rather than inference mode: the result must stay usable in the learner's autograd graph.
  const c10::NoGradGuard no_grad;
  const at::Tensor rewards_f = detail::float32_contiguous(rewards);
  const at::Tensor values_f = detail::float32_contiguous(values);
  const at::Tensor dones_s = detail::flag_storage(dones);
  const at::Tensor valids_s = detail::flag_storage(valids);
  at::Tensor advantages = detail::empty_result(rewards, shape);
  const std::int64_t rows = shape.rows.expect_int();
  const std::int64_t steps = shape.steps.expect_int();
  if (rows == 0) return advantages;
  // gamma * lambda is formed in double, then rounded once, as Sample Factory's Python float product is.
  const auto gamma_f = static_cast<float>(gamma);
  const auto gamma_lambda_f = static_cast<float>(gamma * gae_lambda);
  float* out = advantages.mutable_data_ptr<float>();
  detail::with_flag_data(dones_s, [&](const auto* done_data) {
    detail::with_flag_data(valids_s, [&](const auto* valid_data) {
      gae_cpu_rows(rewards_f.const_data_ptr<float>(), done_data, values_f.const_data_ptr<float>(), valid_data, rows,
                   steps, gamma_f, gamma_lambda_f, out);
    });
  });
  return advantages;
}

at::Tensor gae_advantages_generic(const at::Tensor& rewards, const at::Tensor& dones, const at::Tensor& values,
                                  const at::Tensor& valids, double gamma, double gae_lambda) {
  const detail::BatchShape shape = check_inputs(rewards, dones, values, valids, gamma, gae_lambda);
  const c10::NoGradGuard no_grad;
  return gae_generic_compute(rewards, dones, values, valids, shape.steps.guard_int(__FILE__, __LINE__), gamma,
                             gae_lambda);
}

at::Tensor gae_advantages_meta(const at::Tensor& rewards, const at::Tensor& dones, const at::Tensor& values,
                               const at::Tensor& valids, double gamma, double gae_lambda) {
  return detail::empty_result(rewards, check_inputs(rewards, dones, values, valids, gamma, gae_lambda));
}

}  // namespace pysf::ops::kernels
