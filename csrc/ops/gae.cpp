// gae_advantages: vectorized passes and interleaved recursions for CPU tensors, a time-step loop of ATen ops
// for any device.
#include "ops/gae.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pysf::ops {

namespace {

constexpr std::string_view kOp = "gae_advantages";

struct GaeInputs {
  at::Tensor rewards, dones, values, valids;
  std::int64_t rows = 0;   // N, trajectories
  std::int64_t steps = 0;  // T, steps per trajectory
};

GaeInputs check_inputs(const at::Tensor& rewards, const at::Tensor& dones, const at::Tensor& values,
                       const at::Tensor& valids, double gamma, double gae_lambda) {
  detail::check_defined(kOp, "rewards", rewards);
  if (rewards.dim() != 2) {
    detail::fail(kOp, "rewards", "must be 2-D [N, T], got shape " + detail::shape_string(rewards.sizes()));
  }
  const std::int64_t n = rewards.size(0);
  const std::int64_t t = rewards.size(1);
  if (t < 1) detail::fail(kOp, "rewards", "must have at least one step (T >= 1), got shape [N, 0]");
  detail::check_shape(kOp, "dones", dones, n, t, "[N, T]");
  detail::check_shape(kOp, "values", values, n, t + 1, "[N, T+1]");
  detail::check_shape(kOp, "valids", valids, n, t + 1, "[N, T+1]");
  detail::check_floating(kOp, "rewards", rewards);
  detail::check_floating(kOp, "values", values);
  detail::check_flags(kOp, "dones", dones);
  detail::check_flags(kOp, "valids", valids);
  const at::Device device = rewards.device();
  detail::check_device(kOp, "dones", dones, device);
  detail::check_device(kOp, "values", values, device);
  detail::check_device(kOp, "valids", valids, device);
  if (!std::isfinite(gamma)) detail::fail(kOp, "gamma", "must be finite, got " + std::to_string(gamma));
  if (!std::isfinite(gae_lambda)) {
    detail::fail(kOp, "gae_lambda", "must be finite, got " + std::to_string(gae_lambda));
  }
  return GaeInputs{rewards, dones, values, valids, n, t};
}

// ---- CPU: contiguous rows, an elementwise pass, then the recursion for blocks of trajectories at once ----

// Bool tensors are read as their bytes (0 or 1): GCC does not vectorize loads of `bool` itself.
inline float flag_value(std::uint8_t flag) { return static_cast<float>(flag); }
inline float flag_value(float flag) { return flag; }

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

// Trajectories are processed in blocks of this many: enough independent chains to hide the latency of one
// step's multiply-add, while a block's factors (kLanes * T floats) stay in L1.
constexpr int kLanes = 8;

template <typename DoneT, typename ValidT>
void gae_cpu_rows(const float* rewards, const DoneT* dones, const float* values, const ValidT* valids,
                  std::int64_t rows, std::int64_t steps, float gamma, float gamma_lambda, float* advantages) {
  std::vector<float> factors(static_cast<std::size_t>(kLanes * steps));
  for (std::int64_t block = 0; block < rows; block += kLanes) {
    const std::int64_t lanes = std::min<std::int64_t>(kLanes, rows - block);
    for (std::int64_t lane = 0; lane < lanes; ++lane) {
      const std::int64_t row = block + lane;
      gae_terms(rewards + row * steps, dones + row * steps, values + row * (steps + 1), valids + row * (steps + 1),
                steps, gamma, gamma_lambda, advantages + row * steps, factors.data() + lane * steps);
    }
    float* block_out = advantages + block * steps;
    if (lanes == kLanes) {
      gae_recurse<kLanes>(block_out, factors.data(), steps);
    } else {
      for (std::int64_t lane = 0; lane < lanes; ++lane) {
        gae_recurse<1>(block_out + lane * steps, factors.data() + lane * steps, steps);
      }
    }
  }
}

const std::uint8_t* bool_bytes(const at::Tensor& flags) {
  return reinterpret_cast<const std::uint8_t*>(flags.const_data_ptr<bool>());
}

// Flags stay in bool storage when they are bool; anything else is read as float32.
at::Tensor flag_storage(const at::Tensor& flags) {
  return flags.scalar_type() == at::kBool ? flags.contiguous() : detail::float32_contiguous(flags);
}

template <typename DoneT>
void dispatch_valids(const at::Tensor& rewards, const DoneT* dones, const at::Tensor& values, const at::Tensor& valids,
                     std::int64_t rows, std::int64_t steps, float gamma, float gamma_lambda, float* out) {
  if (valids.scalar_type() == at::kBool) {
    gae_cpu_rows(rewards.const_data_ptr<float>(), dones, values.const_data_ptr<float>(), bool_bytes(valids),
                 rows, steps, gamma, gamma_lambda, out);
  } else {
    gae_cpu_rows(rewards.const_data_ptr<float>(), dones, values.const_data_ptr<float>(),
                 valids.const_data_ptr<float>(), rows, steps, gamma, gamma_lambda, out);
  }
}

at::Tensor gae_cpu(const GaeInputs& in, double gamma, double gae_lambda) {
  const at::Tensor rewards = detail::float32_contiguous(in.rewards);
  const at::Tensor values = detail::float32_contiguous(in.values);
  const at::Tensor dones = flag_storage(in.dones);
  const at::Tensor valids = flag_storage(in.valids);
  at::Tensor advantages = at::empty({in.rows, in.steps}, rewards.options());
  if (in.rows == 0) return advantages;
  // gamma * lambda is formed in double, then rounded once, as Sample Factory's Python float product is.
  const auto gamma_f = static_cast<float>(gamma);
  const auto gamma_lambda_f = static_cast<float>(gamma * gae_lambda);
  float* out = advantages.mutable_data_ptr<float>();
  if (dones.scalar_type() == at::kBool) {
    dispatch_valids(rewards, bool_bytes(dones), values, valids, in.rows, in.steps, gamma_f, gamma_lambda_f,
                    out);
  } else {
    dispatch_valids(rewards, dones.const_data_ptr<float>(), values, valids, in.rows, in.steps, gamma_f,
                    gamma_lambda_f, out);
  }
  return advantages;
}

// ---- any device: vectorized TD errors and discounts, then one fused op per time step ---------------------

at::Tensor gae_generic(const GaeInputs& in, double gamma, double gae_lambda) {
  using at::indexing::Slice;
  const std::int64_t steps = in.steps;
  const at::Tensor rewards = in.rewards.to(at::kFloat);
  const at::Tensor dones = in.dones.to(at::kFloat);
  const at::Tensor values = in.values.to(at::kFloat);
  const at::Tensor valids = in.valids.to(at::kFloat);

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

at::Tensor gae_advantages(const at::Tensor& rewards, const at::Tensor& dones, const at::Tensor& values,
                          const at::Tensor& valids, double gamma, double gae_lambda, Implementation implementation) {
  const GaeInputs inputs = check_inputs(rewards, dones, values, valids, gamma, gae_lambda);
  // No-grad rather than inference mode: the result must stay usable in the learner's autograd graph.
  const c10::NoGradGuard no_grad;
  if (implementation == Implementation::Auto && rewards.device().is_cpu()) return gae_cpu(inputs, gamma, gae_lambda);
  return gae_generic(inputs, gamma, gae_lambda);
}

}  // namespace pysf::ops
