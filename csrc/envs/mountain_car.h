// MountainCar-v0 and MountainCarContinuous-v0, native: gymnasium 1.x's classic_control/mountain_car.py
// and continuous_mountain_car.py as BlockVectorEnv physics models. They share the track and the reset
// distribution but not their arithmetic (see MountainCarContinuousDynamics), hence two classes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "envs/block_vector_env.h"
#include "envs/rng.h"
#include "envs/vector_env.h"

namespace pysf::envs {

/// MountainCar-v0: drive an under-powered car up the right hill (actions 0, 1, 2: push left, none, right).
///
/// Gymnasium 1.4's MountainCarEnv (goal_velocity 0) under its registered TimeLimit of 200 steps, in float64:
///   velocity += (action - 1) * 0.001 + cos(3 * position) * (-0.0025), clipped to [-0.07, 0.07];
///   position += velocity, clipped to [-1.2, 0.6]; at the left wall a negative velocity becomes 0;
///   terminated when position >= 0.5 (and velocity >= 0); reward -1 on every step;
///   initial position uniform in [-0.6, -0.4), velocity 0.
/// State and observation: [position, velocity] (float64 / float32).
class MountainCarDynamics {
 public:
  static constexpr int kStateSize = 2;
  static constexpr bool kDiscreteActions = true;

  [[nodiscard]] static EnvSpec spec();

  explicit MountainCarDynamics(int num_envs);
  void reset(int i, Rng& rng);
  Transition step(int i, std::int32_t action);
  void observe(int i, float* row, std::int64_t col_stride) const;
  void get_state(int i, std::span<double> state) const;
  void set_state(int i, std::span<const double> state);

 private:
  std::vector<double> position_, velocity_;
};

/// MountainCarContinuous-v0: the same car with a continuous engine force, action in Box(-1, 1, (1,)).
///
/// Gymnasium 1.4's Continuous_MountainCarEnv under its registered TimeLimit of 999 steps:
///   force = clip(action, -1, 1); velocity += force * 0.0015 - 0.0025 * cos(3 * position), clipped to
///   [-0.07, 0.07]; position += velocity, clipped to [-1.2, 0.6]; at the left wall a negative velocity
///   becomes 0; terminated when position >= 0.45 (and velocity >= 0);
///   reward = (100 if terminated else 0) - 0.1 * action^2, with the action *before* clipping;
///   initial position uniform in [-0.6, -0.4), velocity 0.
/// Precision, reproduced exactly: gymnasium keeps the reset state in float64 but stores the state as
/// float32 after every step, and NumPy's promotion rules then run most of a step in float32 (with a few
/// operations in float64). So the first step of an episode follows float64 arithmetic, later ones
/// float32; set_state picks float32 arithmetic when both values are exactly representable as float32
/// (what gymnasium holds after a step), float64 otherwise (a reset state).
/// State and observation: [position, velocity].
class MountainCarContinuousDynamics {
 public:
  static constexpr int kStateSize = 2;
  static constexpr bool kDiscreteActions = false;

  [[nodiscard]] static EnvSpec spec();

  explicit MountainCarContinuousDynamics(int num_envs);
  void reset(int i, Rng& rng);
  Transition step(int i, const float* action);
  void observe(int i, float* row, std::int64_t col_stride) const;
  void get_state(int i, std::span<double> state) const;
  void set_state(int i, std::span<const double> state);

 private:
  std::vector<double> position_, velocity_;
  // 1 while the state is a reset state (NumPy float64), 0 once a step has stored it as float32.
  std::vector<std::uint8_t> float64_state_;
};

/// A block of `num_envs` MountainCar-v0 envs seeded with `seed` (see VectorEnv::seed).
[[nodiscard]] std::unique_ptr<VectorEnv> make_mountain_car_env(int num_envs, std::uint64_t seed);
/// A block of `num_envs` MountainCarContinuous-v0 envs seeded with `seed` (see VectorEnv::seed).
[[nodiscard]] std::unique_ptr<VectorEnv> make_mountain_car_continuous_env(int num_envs, std::uint64_t seed);

}  // namespace pysf::envs
