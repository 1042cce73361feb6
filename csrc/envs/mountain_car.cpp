// MountainCar-v0 and MountainCarContinuous-v0 physics, following gymnasium's expressions operation for
// operation, with NumPy's float32/float64 promotions where the continuous version mixes them.
#include "envs/classic_control.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "envs/block_vector_env.h"
#include "envs/rng.h"

namespace pysf::envs::mountain_car {

namespace {

constexpr double kMinPosition = -1.2;
constexpr double kMaxPosition = 0.6;
constexpr double kMaxSpeed = 0.07;
constexpr double kGravity = 0.0025;
constexpr double kResetLow = -0.6;
constexpr double kResetHigh = -0.4;

// Discrete version.
constexpr double kForce = 0.001;
constexpr double kGoalPosition = 0.5;

// Continuous version.
constexpr double kPower = 0.0015;
constexpr double kContinuousGoalPosition = 0.45;
constexpr double kMaxAction = 1.0;

// float32 copies of the constants: NumPy compares a float32 scalar with a Python float in float32
// (NEP 50), and clipping to a Python float then storing as float32 yields these.
constexpr float kMinPositionF = static_cast<float>(kMinPosition);
constexpr float kMaxPositionF = static_cast<float>(kMaxPosition);
constexpr float kMaxSpeedF = static_cast<float>(kMaxSpeed);
constexpr float kContinuousGoalPositionF = static_cast<float>(kContinuousGoalPosition);
constexpr float kPowerF = static_cast<float>(kPower);

Space track_observation_space() {
  return Space::box({2}, {static_cast<float>(kMinPosition), static_cast<float>(-kMaxSpeed)},
                    {static_cast<float>(kMaxPosition), static_cast<float>(kMaxSpeed)});
}

// What both MountainCar variants keep per env, and how it is observed and saved: position and velocity.
class CarOnTrack {
 public:
  static constexpr int kStateSize = 2;

  explicit CarOnTrack(int num_envs)
      : position_(static_cast<std::size_t>(num_envs)), velocity_(static_cast<std::size_t>(num_envs)) {}

  void observe(int i, float* row, std::int64_t col_stride) const {
    row[0] = static_cast<float>(position_[i]);
    row[col_stride] = static_cast<float>(velocity_[i]);
  }

  void get_state(int i, std::span<double> state) const {
    state[0] = position_[i];
    state[1] = velocity_[i];
  }

  void set_state(int i, std::span<const double> state) {
    position_[i] = state[0];
    velocity_[i] = state[1];
  }

 protected:
  std::vector<double> position_, velocity_;
};

}  // namespace

// ---- MountainCar-v0 ----------------------------------------------------------------------------

namespace {

// MountainCar-v0 as a BlockVectorEnv physics model (what it computes: classic_control.h).
class MountainCarDynamics : public CarOnTrack {
 public:
  static constexpr bool kDiscreteActions = true;

  [[nodiscard]] static EnvSpec spec() {
    return EnvSpec{.name = "MountainCar-v0",
                   .observation_space = track_observation_space(),
                   .action_space = Space::discrete(3),
                   .max_episode_steps = 200,
                   .reward_threshold = -110.0};
  }

  using CarOnTrack::CarOnTrack;

  void reset(int i, Rng& rng) {
    position_[i] = rng.uniform(kResetLow, kResetHigh);
    velocity_[i] = 0.0;
  }

  Transition step(int i, std::int32_t action) {
    double position = position_[i];
    double velocity = velocity_[i];
    velocity += (action - 1) * kForce + std::cos(3 * position) * (-kGravity);
    velocity = std::min(std::max(velocity, -kMaxSpeed), kMaxSpeed);
    position += velocity;
    position = std::min(std::max(position, kMinPosition), kMaxPosition);
    if (position == kMinPosition && velocity < 0) velocity = 0.0;
    position_[i] = position;
    velocity_[i] = velocity;
    return Transition{.reward = -1.0, .terminated = position >= kGoalPosition && velocity >= 0};
  }

};

}  // namespace

// ---- MountainCarContinuous-v0 ------------------------------------------------------------------
//
// Gymnasium's step, with the NumPy types each value has (p, v: the state's dtype; a = action[0],
// np.float32):
//   force = min(max(a, -1.0), 1.0)            np.float32 a, or the Python float -1.0 / 1.0 if clipped
//   velocity += force * 0.0015 - 0.0025 * math.cos(3 * position)
//       force * 0.0015: float32 (a Python float operand adopts the NumPy scalar's dtype) or, clipped,
//       a Python float; math.cos(...) is a Python float; so the right side is float32 unless clipped.
//   clip velocity, position += velocity, clip position (comparisons in the state's dtype)
//   state = np.array([position, velocity], dtype=np.float32)
// After reset the state is float64 (that step mixes float64 with the float32 force term); after any
// step it is float32, and the whole update then runs in float32 except math.cos.

namespace {

// MountainCarContinuous-v0 as a BlockVectorEnv physics model (what it computes: classic_control.h).
class MountainCarContinuousDynamics : public CarOnTrack {
 public:
  static constexpr bool kDiscreteActions = false;

  [[nodiscard]] static EnvSpec spec() {
    return EnvSpec{.name = "MountainCarContinuous-v0",
                   .observation_space = track_observation_space(),
                   .action_space = Space::box({1}, {static_cast<float>(-kMaxAction)}, {static_cast<float>(kMaxAction)}),
                   .max_episode_steps = 999,
                   .reward_threshold = 90.0};
  }

  explicit MountainCarContinuousDynamics(int num_envs)
      : CarOnTrack(num_envs), float64_state_(static_cast<std::size_t>(num_envs)) {}

  void reset(int i, Rng& rng) {
    position_[i] = rng.uniform(kResetLow, kResetHigh);
    velocity_[i] = 0.0;
    float64_state_[i] = 1;
  }

  Transition step(int i, const float* action) {
    const float a = action[0];
    // Python's max(a, -1.0) returns -1.0 only when -1.0 > a; min(x, 1.0) returns 1.0 only when 1.0 < x.
    const bool clipped_low = a < static_cast<float>(-kMaxAction);
    const bool clipped_high = !clipped_low && a > static_cast<float>(kMaxAction);
    const double clipped_force = clipped_low ? -kMaxAction : kMaxAction;

    bool terminated;
    if (float64_state_[i]) {
      double position = position_[i];
      double velocity = velocity_[i];
      const double gravity_term = kGravity * std::cos(3 * position);
      // float64 += (float32 or Python float): float64 arithmetic on the promoted value.
      velocity += (clipped_low || clipped_high) ? clipped_force * kPower - gravity_term
                                                : static_cast<double>(a * kPowerF - static_cast<float>(gravity_term));
      if (velocity > kMaxSpeed) velocity = kMaxSpeed;
      if (velocity < -kMaxSpeed) velocity = -kMaxSpeed;
      position += velocity;
      if (position > kMaxPosition) position = kMaxPosition;
      if (position < kMinPosition) position = kMinPosition;
      if (position == kMinPosition && velocity < 0) velocity = 0.0;
      terminated = position >= kContinuousGoalPosition && velocity >= 0;
      position_[i] = static_cast<float>(position);
      velocity_[i] = static_cast<float>(velocity);
    } else {
      float position = static_cast<float>(position_[i]);
      float velocity = static_cast<float>(velocity_[i]);
      const double gravity_term = kGravity * std::cos(static_cast<double>(3 * position));  // 3 * p in float32
      // float32 += float32 (unclipped force) or float32 += Python float (clipped force: double arithmetic,
      // then the sum rounded to float32 when it meets the float32 velocity).
      velocity += (clipped_low || clipped_high) ? static_cast<float>(clipped_force * kPower - gravity_term)
                                                : a * kPowerF - static_cast<float>(gravity_term);
      // Clipping to a Python float and storing as float32 is clipping to its float32 value.
      if (velocity > kMaxSpeedF) velocity = kMaxSpeedF;
      if (velocity < -kMaxSpeedF) velocity = -kMaxSpeedF;
      position += velocity;
      if (position > kMaxPositionF) position = kMaxPositionF;
      if (position < kMinPositionF) position = kMinPositionF;
      if (position == kMinPositionF && velocity < 0) velocity = 0.0f;
      terminated = position >= kContinuousGoalPositionF && velocity >= 0;
      position_[i] = position;
      velocity_[i] = velocity;
    }
    float64_state_[i] = 0;

    const double a64 = a;
    const double reward = (terminated ? 100.0 : 0.0) - a64 * a64 * 0.1;  // math.pow(a, 2): exact for a float32 a
    return Transition{.reward = reward, .terminated = terminated};
  }

  void set_state(int i, std::span<const double> state) {
    CarOnTrack::set_state(i, state);
    const bool float32_exact = static_cast<double>(static_cast<float>(state[0])) == state[0] &&
                               static_cast<double>(static_cast<float>(state[1])) == state[1];
    float64_state_[i] = float32_exact ? 0 : 1;
  }

 private:
  // 1 while the state is a reset state (NumPy float64), 0 once a step has stored it as float32.
  std::vector<std::uint8_t> float64_state_;
};

}  // namespace

}  // namespace pysf::envs::mountain_car

namespace pysf::envs {

std::unique_ptr<VectorEnv> make_mountain_car_env(int num_envs, std::uint64_t seed) {
  return std::make_unique<BlockVectorEnv<mountain_car::MountainCarDynamics>>(num_envs, seed);
}

std::unique_ptr<VectorEnv> make_mountain_car_continuous_env(int num_envs, std::uint64_t seed) {
  return std::make_unique<BlockVectorEnv<mountain_car::MountainCarContinuousDynamics>>(num_envs, seed);
}

}  // namespace pysf::envs
