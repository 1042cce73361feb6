// vtrace: vectorized passes and interleaved recursions for CPU tensors, a time-step loop of ATen ops for any
// device.
#include "ops/vtrace.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pysf::ops {

namespace {

constexpr std::string_view kOp = "vtrace";

struct VTraceInputs {
  at::Tensor ratios, rewards, dones, values;
  std::int64_t rows = 0;   // N, trajectories
  std::int64_t steps = 0;  // T, steps per trajectory (the recurrence)
};

VTraceInputs check_inputs(const at::Tensor& ratios, const at::Tensor& rewards, const at::Tensor& dones,
                          const at::Tensor& values, double gamma, double vtrace_rho, double vtrace_c) {
  detail::check_defined(kOp, "ratios", ratios);
  if (ratios.dim() != 2) {
    detail::fail(kOp, "ratios", "must be 2-D [N, T], got shape " + detail::shape_string(ratios.sizes()));
  }
  const std::int64_t n = ratios.size(0);
  const std::int64_t t = ratios.size(1);
  if (t < 1) detail::fail(kOp, "ratios", "must have at least one step (T >= 1), got shape [N, 0]");
  detail::check_shape(kOp, "rewards", rewards, n, t, "[N, T]");
  detail::check_shape(kOp, "dones", dones, n, t, "[N, T]");
  detail::check_shape(kOp, "values", values, n, t, "[N, T] (no bootstrap column)");
  detail::check_floating(kOp, "ratios", ratios);
  detail::check_floating(kOp, "rewards", rewards);
  detail::check_floating(kOp, "values", values);
  detail::check_flags(kOp, "dones", dones);
  const at::Device device = ratios.device();
  detail::check_device(kOp, "rewards", rewards, device);
  detail::check_device(kOp, "dones", dones, device);
  detail::check_device(kOp, "values", values, device);
  if (!std::isfinite(gamma) || gamma <= 0.0) {
    detail::fail(kOp, "gamma",
                 "must be finite and > 0 (the bootstrap value (V_{T-1} - r_{T-1}) / gamma divides by it), got " +
                     std::to_string(gamma));
  }
  if (std::isnan(vtrace_rho)) detail::fail(kOp, "vtrace_rho", "must not be NaN");
  if (std::isnan(vtrace_c)) detail::fail(kOp, "vtrace_c", "must not be NaN");
  return VTraceInputs{ratios, rewards, dones, values, n, t};
}

// ---- CPU: contiguous rows, elementwise passes around the recursion for blocks of trajectories at once -----

// Bool tensors are read as their bytes (0 or 1): GCC does not vectorize loads of `bool` itself.
inline float flag_value(std::uint8_t flag) { return static_cast<float>(flag); }
inline float flag_value(float flag) { return flag; }

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

// Independent chains advanced together in pass 2: enough to hide the latency of one step.
constexpr int kLanes = 8;
// Trajectories per chunk: the flat passes get long loops while a chunk's data stays in L1/L2.
constexpr std::int64_t kChunkRows = 16 * kLanes;

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
    for (; row + kLanes <= chunk_rows; row += kLanes) {
      const std::int64_t r = o + row * steps;
      vtrace_recurse<kLanes>(rewards + r, values + r, steps, gamma, factors.data() + row * steps, vs + r);
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

VTraceResult vtrace_cpu(const VTraceInputs& in, double gamma, double vtrace_rho, double vtrace_c) {
  const at::Tensor ratios = detail::float32_contiguous(in.ratios);
  const at::Tensor rewards = detail::float32_contiguous(in.rewards);
  const at::Tensor values = detail::float32_contiguous(in.values);
  // Bool dones are read as they are stored; anything else as float32.
  const at::Tensor dones =
      in.dones.scalar_type() == at::kBool ? in.dones.contiguous() : detail::float32_contiguous(in.dones);
  VTraceResult result{at::empty({in.rows, in.steps}, rewards.options()),
                      at::empty({in.rows, in.steps}, rewards.options())};
  if (in.rows == 0) return result;
  // Caps become float32 as Sample Factory's torch.Tensor([vtrace_rho]) does (infinity stays infinity).
  const auto gamma_f = static_cast<float>(gamma);
  const auto rho_f = static_cast<float>(vtrace_rho);
  const auto c_f = static_cast<float>(vtrace_c);
  float* vs = result.vs.mutable_data_ptr<float>();
  float* adv = result.advantages.mutable_data_ptr<float>();
  if (dones.scalar_type() == at::kBool) {
    vtrace_cpu_rows(ratios.const_data_ptr<float>(), rewards.const_data_ptr<float>(),
                    reinterpret_cast<const std::uint8_t*>(dones.const_data_ptr<bool>()), values.const_data_ptr<float>(),
                    in.rows, in.steps, gamma_f, rho_f, c_f, vs, adv);
  } else {
    vtrace_cpu_rows(ratios.const_data_ptr<float>(), rewards.const_data_ptr<float>(), dones.const_data_ptr<float>(),
                    values.const_data_ptr<float>(), in.rows, in.steps, gamma_f, rho_f, c_f, vs, adv);
  }
  return result;
}

// ---- any device: vectorized terms, then one fused op per time step -----------------------------------------
//
// With e_t = v_{s,t} - V_t the recursion is linear: e_t = delta_t + g_t * c_t * e_{t+1}, e_T = 0 (the
// recursion starts from v_{s,T} = V_T). Only that needs a loop; v_s and the advantages follow elementwise.

VTraceResult vtrace_generic(const VTraceInputs& in, double gamma, double vtrace_rho, double vtrace_c) {
  using at::indexing::Slice;
  const std::int64_t steps = in.steps;
  const at::Tensor ratios = in.ratios.to(at::kFloat);
  const at::Tensor rewards = in.rewards.to(at::kFloat);
  const at::Tensor dones = in.dones.to(at::kFloat);
  const at::Tensor values = in.values.to(at::kFloat);

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
  at::Tensor excess_tm = at::empty({steps + 1, in.rows}, deltas.options());
  excess_tm[steps].zero_();
  for (std::int64_t t = steps - 1; t >= 0; --t) {
    at::Tensor out_t = excess_tm[t];
    at::addcmul_out(out_t, deltas_tm[t], factors_tm[t], excess_tm[t + 1]);
  }
  const at::Tensor excess = excess_tm.index({Slice(0, steps)}).t();            // e_t      [N, T]
  const at::Tensor excess_next = excess_tm.index({Slice(1, steps + 1)}).t();  // e_{t+1}  [N, T]

  at::Tensor vs = (values + excess).contiguous();
  at::Tensor advantages = (rho * (rewards + not_done_gamma * (values_next + excess_next) - values)).contiguous();
  return VTraceResult{std::move(vs), std::move(advantages)};
}

}  // namespace

VTraceResult vtrace(const at::Tensor& ratios, const at::Tensor& rewards, const at::Tensor& dones,
                    const at::Tensor& values, double gamma, double vtrace_rho, double vtrace_c,
                    Implementation implementation) {
  const VTraceInputs inputs = check_inputs(ratios, rewards, dones, values, gamma, vtrace_rho, vtrace_c);
  // No-grad rather than inference mode: the results must stay usable in the learner's autograd graph.
  const c10::NoGradGuard no_grad;
  if (implementation == Implementation::Auto && ratios.device().is_cpu()) {
    return vtrace_cpu(inputs, gamma, vtrace_rho, vtrace_c);
  }
  return vtrace_generic(inputs, gamma, vtrace_rho, vtrace_c);
}

}  // namespace pysf::ops
