// pysf::vtrace kernels: vectorized passes and interleaved recursions for CPU tensors, a time-step loop of ATen
// ops for any device, shapes only for Meta. Registered in registration.cpp.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "ops/common.h"
#include "ops/kernels.h"

namespace pysf::ops::kernels {

namespace {

constexpr std::string_view kVtraceOp = "vtrace";

detail::BatchShape check_inputs(const at::Tensor& ratios, const at::Tensor& rewards, const at::Tensor& dones,
                                const at::Tensor& values, double gamma, double vtrace_rho, double vtrace_c) {
  const detail::BatchShape shape = detail::check_batch(kVtraceOp, "ratios", ratios);
  detail::check_shape(kVtraceOp, "rewards", rewards, shape.rows, shape.steps, "[N, T]");
  detail::check_shape(kVtraceOp, "dones", dones, shape.rows, shape.steps, "[N, T]");
  detail::check_shape(kVtraceOp, "values", values, shape.rows, shape.steps, "[N, T] (no bootstrap column)");
  detail::check_floating(kVtraceOp, "ratios", ratios);
  detail::check_floating(kVtraceOp, "rewards", rewards);
  detail::check_floating(kVtraceOp, "values", values);
  detail::check_flags(kVtraceOp, "dones", dones);
  detail::check_same_device(kVtraceOp, ratios, {{"rewards", rewards}, {"dones", dones}, {"values", values}});
  if (!std::isfinite(gamma) || gamma <= 0.0) {
    detail::fail(kVtraceOp, "gamma",
                 "must be finite and > 0 (the bootstrap value (V_{T-1} - r_{T-1}) / gamma divides by it), got " +
                     std::to_string(gamma));
  }
  if (std::isnan(vtrace_rho)) detail::fail(kVtraceOp, "vtrace_rho", "must not be NaN");
  if (std::isnan(vtrace_c)) detail::fail(kVtraceOp, "vtrace_c", "must not be NaN");
  return shape;
}

// ---- CPU: contiguous rows, elementwise passes around the recursion for blocks of trajectories at once -----

using detail::flag_value;

// min(cap, ratio) that returns a NaN ratio, as torch.min does (std::min would return the cap).
inline float capped(float ratio, float cap) { return ratio > cap ? cap : ratio; }

// The learner has no value of the state after a trajectory's last step; Sample Factory reconstructs one
// that makes the last step's TD error vanish: r_{T-1} + gamma * V_T = V_{T-1}.
inline float bootstrap_value(const float* rewards, const float* values, std::int64_t steps, float gamma) {
  return (values[steps - 1] - rewards[steps - 1]) / gamma;
}

// The loops below keep Sample Factory's grouping of the operations:
//   delta = rho * ((r + g * V_next) - V)
//   vs    = (V + delta) + (g * c) * (vs_next - V_next)
//   adv   = rho * ((r + g * vs_next) - V)
// split into passes so that only the part that really is a recursion runs step by step. Trajectories are
// short (T = 32 typically), so the elementwise passes run over a whole chunk of trajectories as one flat
// array, reading "the next step" at index i + 1, and then redo each trajectory's last step, whose next
// value is the bootstrap value instead: long loops vectorize well, 32-element ones spend their time in
// prologues and scalar remainders.

// Pass 1 over `size` consecutive elements: base_i = V_i + delta_i (into `bases`) and factor_i = g_i * c_i
// (into `factors`), with next_values[i] as V_{i+1}.
template <typename DoneT>
void vtrace_terms(const float* __restrict__ ratios, const float* __restrict__ rewards, const DoneT* __restrict__ dones,
                  const float* __restrict__ values, const float* __restrict__ next_values, std::int64_t size,
                  float gamma, float rho_bar, float c_bar, float* __restrict__ bases, float* __restrict__ factors) {
  for (std::int64_t i = 0; i < size; ++i) {
    const float not_done_gamma = (1.0F - flag_value(dones[i])) * gamma;
    const float delta = capped(ratios[i], rho_bar) * (rewards[i] + not_done_gamma * next_values[i] - values[i]);
    bases[i] = values[i] + delta;
    factors[i] = not_done_gamma * capped(ratios[i], c_bar);
  }
}

// Pass 3 over `size` consecutive elements, once the v_s are known: the advantages, with next_vs[i] as
// v_{s,i+1}.
template <typename DoneT>
void vtrace_advantages(const float* __restrict__ ratios, const float* __restrict__ rewards,
                       const DoneT* __restrict__ dones, const float* __restrict__ values,
                       const float* __restrict__ next_vs, std::int64_t size, float gamma, float rho_bar,
                       float* __restrict__ advantages) {
  for (std::int64_t i = 0; i < size; ++i) {
    const float not_done_gamma = (1.0F - flag_value(dones[i])) * gamma;
    advantages[i] = capped(ratios[i], rho_bar) * (rewards[i] + not_done_gamma * next_vs[i] - values[i]);
  }
}

// Pass 2 over `kLanes` consecutive trajectories at once: vs_t = base_t + factor_t * (vs_{t+1} - V_{t+1}), in
// place over the bases, from vs_T = V_T = the bootstrap value. Each trajectory is a chain of dependent
// operations; advancing several independent chains together lets the CPU overlap them.
template <int kLanes>
void vtrace_recurse(const float* __restrict__ rewards, const float* __restrict__ values, std::int64_t steps,
                    float gamma, const float* __restrict__ factors, float* __restrict__ vs) {
  float next_value[kLanes];
  float next_vs[kLanes];
  for (int lane = 0; lane < kLanes; ++lane) {
    next_value[lane] = bootstrap_value(rewards + lane * steps, values + lane * steps, steps, gamma);
    next_vs[lane] = next_value[lane];
  }
  for (std::int64_t t = steps - 1; t >= 0; --t) {
    for (int lane = 0; lane < kLanes; ++lane) {
      const std::int64_t i = lane * steps + t;
      next_vs[lane] = vs[i] + factors[i] * (next_vs[lane] - next_value[lane]);
      vs[i] = next_vs[lane];
      next_value[lane] = values[i];
    }
  }
}

// Trajectories per chunk: the flat passes get long loops while a chunk's data stays in L1/L2.
constexpr std::int64_t kChunkRows = 16 * detail::kLanes;

template <typename DoneT>
void vtrace_cpu_rows(const float* ratios, const float* rewards, const DoneT* dones, const float* values,
                     std::int64_t rows, std::int64_t steps, float gamma, float rho_bar, float c_bar, float* vs,
                     float* advantages) {
  std::vector<float> factors(static_cast<std::size_t>(std::min(rows, kChunkRows) * steps));
  for (std::int64_t first = 0; first < rows; first += kChunkRows) {
    const std::int64_t chunk_rows = std::min(kChunkRows, rows - first);
    const std::int64_t size = chunk_rows * steps;
    const std::int64_t o = first * steps;  // the chunk's offset

    // Pass 1, flat, then each trajectory's last step again with its bootstrap value.
    vtrace_terms(ratios + o, rewards + o, dones + o, values + o, values + o + 1, size - 1, gamma, rho_bar, c_bar,
                 vs + o, factors.data());
    for (std::int64_t last = o + steps - 1; last < o + size; last += steps) {
      const float bootstrap = bootstrap_value(rewards + last + 1 - steps, values + last + 1 - steps, steps, gamma);
      vtrace_terms(ratios + last, rewards + last, dones + last, values + last, &bootstrap, 1, gamma, rho_bar, c_bar,
                   vs + last, factors.data() + (last - o));
    }
    // Pass 2, blocks of kLanes trajectories, then one at a time for the rest.
    std::int64_t row = 0;
    for (; row + detail::kLanes <= chunk_rows; row += detail::kLanes) {
      const std::int64_t r = o + row * steps;
      vtrace_recurse<detail::kLanes>(rewards + r, values + r, steps, gamma, factors.data() + row * steps, vs + r);
    }
    for (; row < chunk_rows; ++row) {
      const std::int64_t r = o + row * steps;
      vtrace_recurse<1>(rewards + r, values + r, steps, gamma, factors.data() + row * steps, vs + r);
    }
    // Pass 3, flat, then the last steps again: their v_{s,T} is the bootstrap value.
    vtrace_advantages(ratios + o, rewards + o, dones + o, values + o, vs + o + 1, size - 1, gamma, rho_bar,
                      advantages + o);
    for (std::int64_t last = o + steps - 1; last < o + size; last += steps) {
      const float bootstrap = bootstrap_value(rewards + last + 1 - steps, values + last + 1 - steps, steps, gamma);
      vtrace_advantages(ratios + last, rewards + last, dones + last, values + last, &bootstrap, 1, gamma, rho_bar,
                        advantages + last);
    }
  }
}

// ---- any device: vectorized terms, then one fused op per time step -----------------------------------------
//
// With e_t = v_{s,t} - V_t the recursion is linear: e_t = delta_t + g_t * c_t * e_{t+1}, e_T = 0 (the
// recursion starts from v_{s,T} = V_T). Only that needs a loop; v_s and the advantages follow elementwise.

std::tuple<at::Tensor, at::Tensor> vtrace_generic_compute(const at::Tensor& ratios_in, const at::Tensor& rewards_in,
                                                          const at::Tensor& dones_in, const at::Tensor& values_in,
                                                          std::int64_t rows, std::int64_t steps, double gamma,
                                                          double vtrace_rho, double vtrace_c) {
  using at::indexing::Slice;
  const at::Tensor ratios = ratios_in.to(at::kFloat);
  const at::Tensor rewards = rewards_in.to(at::kFloat);
  const at::Tensor dones = dones_in.to(at::kFloat);
  const at::Tensor values = values_in.to(at::kFloat);

  // clamp_max(x, cap) is min(cap, x) elementwise and keeps NaN ratios NaN.
  const at::Tensor rho = at::clamp_max(ratios, vtrace_rho);
  const at::Tensor c = at::clamp_max(ratios, vtrace_c);
  const at::Tensor not_done_gamma = (1.0 - dones) * gamma;

  // V_{t+1}, with the reconstructed bootstrap (V_{T-1} - r_{T-1}) / gamma after the last step.
  const at::Tensor bootstrap =
      (values.index({Slice(), Slice(steps - 1, steps)}) - rewards.index({Slice(), Slice(steps - 1, steps)})) / gamma;
  const at::Tensor values_next = at::cat({values.index({Slice(), Slice(1, steps)}), bootstrap}, 1);

  const at::Tensor deltas = rho * (rewards + not_done_gamma * values_next - values);
  const at::Tensor factors = not_done_gamma * c;

  // Time-major so each step reads and writes one contiguous row of N elements; row T holds e_T = 0.
  const at::Tensor deltas_tm = deltas.t().contiguous();
  const at::Tensor factors_tm = factors.t().contiguous();
  at::Tensor excess_tm = at::empty({steps + 1, rows}, deltas.options());
  excess_tm[steps].zero_();
  for (std::int64_t t = steps - 1; t >= 0; --t) {
    at::Tensor out_t = excess_tm[t];
    at::addcmul_out(out_t, deltas_tm[t], factors_tm[t], excess_tm[t + 1]);
  }
  const at::Tensor excess = excess_tm.index({Slice(0, steps)}).t();            // e_t      [N, T]
  const at::Tensor excess_next = excess_tm.index({Slice(1, steps + 1)}).t();  // e_{t+1}  [N, T]

  at::Tensor vs = (values + excess).contiguous();
  at::Tensor advantages = (rho * (rewards + not_done_gamma * (values_next + excess_next) - values)).contiguous();
  return {std::move(vs), std::move(advantages)};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> vtrace_cpu(const at::Tensor& ratios, const at::Tensor& rewards,
                                              const at::Tensor& dones, const at::Tensor& values, double gamma,
                                              double vtrace_rho, double vtrace_c) {
  const detail::BatchShape shape = check_inputs(ratios, rewards, dones, values, gamma, vtrace_rho, vtrace_c);
  // No-grad rather than inference mode: the results must stay usable in the learner's autograd graph.
  const c10::NoGradGuard no_grad;
  const at::Tensor ratios_f = detail::float32_contiguous(ratios);
  const at::Tensor rewards_f = detail::float32_contiguous(rewards);
  const at::Tensor values_f = detail::float32_contiguous(values);
  const at::Tensor dones_s = detail::flag_storage(dones);
  at::Tensor vs = detail::empty_result(ratios, shape);
  at::Tensor advantages = detail::empty_result(ratios, shape);
  const std::int64_t rows = shape.rows.expect_int();
  if (rows == 0) return {std::move(vs), std::move(advantages)};
  // Caps become float32 as Sample Factory's torch.Tensor([vtrace_rho]) does (infinity stays infinity).
  const auto gamma_f = static_cast<float>(gamma);
  const auto rho_f = static_cast<float>(vtrace_rho);
  const auto c_f = static_cast<float>(vtrace_c);
  detail::with_flag_data(dones_s, [&](const auto* done_data) {
    vtrace_cpu_rows(ratios_f.const_data_ptr<float>(), rewards_f.const_data_ptr<float>(), done_data,
                    values_f.const_data_ptr<float>(), rows, shape.steps.expect_int(), gamma_f, rho_f, c_f,
                    vs.mutable_data_ptr<float>(), advantages.mutable_data_ptr<float>());
  });
  return {std::move(vs), std::move(advantages)};
}

std::tuple<at::Tensor, at::Tensor> vtrace_generic(const at::Tensor& ratios, const at::Tensor& rewards,
                                                  const at::Tensor& dones, const at::Tensor& values, double gamma,
                                                  double vtrace_rho, double vtrace_c) {
  const detail::BatchShape shape = check_inputs(ratios, rewards, dones, values, gamma, vtrace_rho, vtrace_c);
  const c10::NoGradGuard no_grad;
  return vtrace_generic_compute(ratios, rewards, dones, values, shape.rows.guard_int(__FILE__, __LINE__),
                                shape.steps.guard_int(__FILE__, __LINE__), gamma, vtrace_rho, vtrace_c);
}

std::tuple<at::Tensor, at::Tensor> vtrace_meta(const at::Tensor& ratios, const at::Tensor& rewards,
                                               const at::Tensor& dones, const at::Tensor& values, double gamma,
                                               double vtrace_rho, double vtrace_c) {
  const detail::BatchShape shape = check_inputs(ratios, rewards, dones, values, gamma, vtrace_rho, vtrace_c);
  return {detail::empty_result(ratios, shape), detail::empty_result(ratios, shape)};
}

}  // namespace pysf::ops::kernels
