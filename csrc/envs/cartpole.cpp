// CartPole-v1 physics. Every expression keeps gymnasium's operand order: NumPy rounds each operation
// in float64, and reproducing that order makes the native trajectories identical to gymnasium's.
#include "envs/classic_control.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <numbers>
#include <span>
#include <vector>

#include "envs/block_vector_env.h"
#include "envs/rng.h"

namespace pysf::envs::cartpole {

namespace {

constexpr double kGravity = 9.8;
constexpr double kMassCart = 1.0;
constexpr double kMassPole = 0.1;
constexpr double kTotalMass = kMassPole + kMassCart;
constexpr double kLength = 0.5;  // half the pole's length
constexpr double kPoleMassLength = kMassPole * kLength;
constexpr double kForceMag = 10.0;
constexpr double kTau = 0.02;  // seconds per step
constexpr double kThetaThreshold = 12 * 2 * std::numbers::pi / 360;
constexpr double kXThreshold = 2.4;
constexpr double kResetBound = 0.05;

// CartPole-v1 as a BlockVectorEnv physics model (what it computes: classic_control.h).
class CartPoleDynamics {
 public:
  static constexpr int kStateSize = 4;
  static constexpr bool kDiscreteActions = true;

  [[nodiscard]] static EnvSpec spec() {
    constexpr float inf = std::numeric_limits<float>::infinity();
    const std::vector<float> high = {static_cast<float>(kXThreshold * 2), inf, static_cast<float>(kThetaThreshold * 2),
                                     inf};
    return EnvSpec{.name = "CartPole-v1",
                   .observation_space = Space::box({4}, {-high[0], -high[1], -high[2], -high[3]}, high),
                   .action_space = Space::discrete(2),
                   .max_episode_steps = 500,
                   .reward_threshold = 475.0};
  }

  explicit CartPoleDynamics(int num_envs)
      : x_(static_cast<std::size_t>(num_envs)),
        x_dot_(static_cast<std::size_t>(num_envs)),
        theta_(static_cast<std::size_t>(num_envs)),
        theta_dot_(static_cast<std::size_t>(num_envs)) {}

  void reset(int i, Rng& rng) {
    // np_random.uniform(low, high, size=(4,)) draws the four values in this order.
    x_[i] = rng.uniform(-kResetBound, kResetBound);
    x_dot_[i] = rng.uniform(-kResetBound, kResetBound);
    theta_[i] = rng.uniform(-kResetBound, kResetBound);
    theta_dot_[i] = rng.uniform(-kResetBound, kResetBound);
  }

  Transition step(int i, std::int32_t action) {
    const double x = x_[i];
    const double x_dot = x_dot_[i];
    const double theta = theta_[i];
    const double theta_dot = theta_dot_[i];

    const double force = action == 1 ? kForceMag : -kForceMag;
    const double costheta = std::cos(theta);
    const double sintheta = std::sin(theta);
    const double temp = (force + kPoleMassLength * (theta_dot * theta_dot) * sintheta) / kTotalMass;
    const double thetaacc = (kGravity * sintheta - costheta * temp) /
                            (kLength * (4.0 / 3.0 - kMassPole * (costheta * costheta) / kTotalMass));
    const double xacc = temp - kPoleMassLength * thetaacc * costheta / kTotalMass;

    const double new_x = x + kTau * x_dot;
    const double new_theta = theta + kTau * theta_dot;
    x_[i] = new_x;
    x_dot_[i] = x_dot + kTau * xacc;
    theta_[i] = new_theta;
    theta_dot_[i] = theta_dot + kTau * thetaacc;

    const bool terminated =
        new_x < -kXThreshold || new_x > kXThreshold || new_theta < -kThetaThreshold || new_theta > kThetaThreshold;
    return Transition{.reward = 1.0, .terminated = terminated};
  }

  void observe(int i, float* row, std::int64_t col_stride) const {
    row[0] = static_cast<float>(x_[i]);
    row[col_stride] = static_cast<float>(x_dot_[i]);
    row[2 * col_stride] = static_cast<float>(theta_[i]);
    row[3 * col_stride] = static_cast<float>(theta_dot_[i]);
  }

  void get_state(int i, std::span<double> state) const {
    state[0] = x_[i];
    state[1] = x_dot_[i];
    state[2] = theta_[i];
    state[3] = theta_dot_[i];
  }

  void set_state(int i, std::span<const double> state) {
    x_[i] = state[0];
    x_dot_[i] = state[1];
    theta_[i] = state[2];
    theta_dot_[i] = state[3];
  }

 private:
  std::vector<double> x_, x_dot_, theta_, theta_dot_;
};

}  // namespace

}  // namespace pysf::envs::cartpole

namespace pysf::envs {

std::unique_ptr<VectorEnv> make_cartpole_env(int num_envs, std::uint64_t seed) {
  return std::make_unique<BlockVectorEnv<cartpole::CartPoleDynamics>>(num_envs, seed);
}

}  // namespace pysf::envs
