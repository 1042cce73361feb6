// Acrobot-v1, native: gymnasium 1.x's classic_control/acrobot.py as a BlockVectorEnv physics model.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "envs/block_vector_env.h"
#include "envs/rng.h"
#include "envs/vector_env.h"

namespace pysf::envs {

/// Acrobot-v1: swing the free end of a two-link chain above a height by torquing the middle joint
/// (actions 0, 1, 2 apply -1, 0, +1 N m).
///
/// Gymnasium 1.4's AcrobotEnv ("book" dynamics, torque_noise_max = 0) under its registered TimeLimit of
/// 500 steps, operation for operation in float64:
///   - one classic RK4 step of dt = 0.2 s on (theta1, theta2, dtheta1, dtheta2) with the torque held;
///   - then both angles wrapped into [-pi, pi] (by repeated +-2 pi, as gymnasium's wrap) and the
///     velocities clipped to [-4 pi, 4 pi] and [-9 pi, 9 pi];
///   - terminated when -cos(theta1) - cos(theta2 + theta1) > 1; reward -1, or 0 on the terminating step;
///   - initial state uniform in [-0.1, 0.1) for each value, rounded to float32 (gymnasium stores the
///     reset state as float32; from the first step on it is float64).
/// State: [theta1, theta2, dtheta1, dtheta2]. Observation (float32):
/// [cos theta1, sin theta1, cos theta2, sin theta2, dtheta1, dtheta2].
class AcrobotDynamics {
 public:
  static constexpr int kStateSize = 4;
  static constexpr bool kDiscreteActions = true;

  [[nodiscard]] static EnvSpec spec();

  explicit AcrobotDynamics(int num_envs);
  void reset(int i, Rng& rng);
  Transition step(int i, std::int32_t action);
  void observe(int i, float* row, std::int64_t col_stride) const;
  void get_state(int i, std::span<double> state) const;
  void set_state(int i, std::span<const double> state);

 private:
  std::vector<double> theta1_, theta2_, dtheta1_, dtheta2_;
};

/// A block of `num_envs` Acrobot-v1 envs seeded with `seed` (see VectorEnv::seed).
[[nodiscard]] std::unique_ptr<VectorEnv> make_acrobot_env(int num_envs, std::uint64_t seed);

}  // namespace pysf::envs
