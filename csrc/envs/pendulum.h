// Pendulum-v1, native: gymnasium 1.x's classic_control/pendulum.py as a BlockVectorEnv physics model.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "envs/block_vector_env.h"
#include "envs/rng.h"
#include "envs/vector_env.h"

namespace pysf::envs {

/// Pendulum-v1: swing a pendulum up and hold it upright with a torque in Box(-2, 2, (1,)).
///
/// Gymnasium 1.4's PendulumEnv (g = 10) under its registered TimeLimit of 200 steps; state in float64:
///   u = clip(action, -2, 2) (float32);
///   reward = -(angle_normalize(th)^2 + 0.1 * thdot^2 + 0.001 * u^2), with angle_normalize(x) =
///   ((x + pi) mod 2 pi) - pi, of the state *before* the step;
///   thdot += (15 sin th + 3 u) * 0.05, clipped to [-8, 8]; th += thdot * 0.05 (semi-implicit Euler);
///   never terminated; initial th uniform in [-pi, pi), thdot uniform in [-1, 1).
/// State: [th, thdot] (th is not wrapped). Observation (float32): [cos th, sin th, thdot].
class PendulumDynamics {
 public:
  static constexpr int kStateSize = 2;
  static constexpr bool kDiscreteActions = false;

  [[nodiscard]] static EnvSpec spec();

  explicit PendulumDynamics(int num_envs);
  void reset(int i, Rng& rng);
  Transition step(int i, const float* action);
  void observe(int i, float* row, std::int64_t col_stride) const;
  void get_state(int i, std::span<double> state) const;
  void set_state(int i, std::span<const double> state);

 private:
  std::vector<double> theta_, theta_dot_;
};

/// A block of `num_envs` Pendulum-v1 envs seeded with `seed` (see VectorEnv::seed).
[[nodiscard]] std::unique_ptr<VectorEnv> make_pendulum_env(int num_envs, std::uint64_t seed);

}  // namespace pysf::envs
