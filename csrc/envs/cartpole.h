// CartPole-v1, native: gymnasium 1.x's classic_control/cartpole.py as a BlockVectorEnv physics model.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "envs/block_vector_env.h"
#include "envs/rng.h"
#include "envs/vector_env.h"

namespace pysf::envs {

/// CartPole-v1: balance a pole on a cart by pushing the cart left (action 0) or right (action 1).
///
/// Gymnasium 1.4's CartPoleEnv (sutton_barto_reward=False, kinematics_integrator="euler") under its
/// registered TimeLimit of 500 steps, operation for operation in float64:
///   - explicit Euler with tau = 0.02 on the Barto-Sutton-Anderson equations, force +-10 N;
///   - reward +1 on every step, the terminating one included;
///   - terminated when x leaves [-2.4, 2.4] or theta leaves [-12, 12] degrees (12 * 2 * pi / 360 rad);
///   - initial state uniform in [-0.05, 0.05) for each of the four values.
/// State: [x, x_dot, theta, theta_dot] (float64, gymnasium's env.unwrapped.state).
/// Observation: the same four values as float32; space Box(-high, high) with
/// high = [4.8, inf, 2 * theta_threshold, inf].
class CartPoleDynamics {
 public:
  static constexpr int kStateSize = 4;
  static constexpr bool kDiscreteActions = true;

  [[nodiscard]] static EnvSpec spec();

  explicit CartPoleDynamics(int num_envs);
  void reset(int i, Rng& rng);
  Transition step(int i, std::int32_t action);
  void observe(int i, float* row, std::int64_t col_stride) const;
  void get_state(int i, std::span<double> state) const;
  void set_state(int i, std::span<const double> state);

 private:
  std::vector<double> x_, x_dot_, theta_, theta_dot_;
};

/// A block of `num_envs` CartPole-v1 envs seeded with `seed` (see VectorEnv::seed).
[[nodiscard]] std::unique_ptr<VectorEnv> make_cartpole_env(int num_envs, std::uint64_t seed);

}  // namespace pysf::envs
