// Pendulum-v1 physics, following gymnasium's expressions operation for operation, with NumPy's types:
// the state is float64 and the clipped torque u a float32 scalar, so u ** 2, 0.001 * u ** 2 and 3.0 * u
// are float32 operations whose results join the float64 sums.
#include "envs/classic_control.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numbers>
#include <span>
#include <vector>

#include "envs/block_vector_env.h"
#include "envs/numpy_scalar_math.h"
#include "envs/rng.h"

namespace pysf::envs::pendulum {

namespace {

constexpr double kPi = std::numbers::pi;
constexpr double kMaxSpeed = 8;
constexpr double kMaxTorque = 2.0;
constexpr double kDt = 0.05;
constexpr double kG = 10.0;
constexpr double kM = 1.0;
constexpr double kL = 1.0;
constexpr double kResetTheta = kPi;  // DEFAULT_X
constexpr double kResetThetaDot = 1.0;  // DEFAULT_Y

double angle_normalize(double x) { return numpy::remainder(x + kPi, 2 * kPi) - kPi; }

// Pendulum-v1 as a BlockVectorEnv physics model (what it computes: classic_control.h).
class PendulumDynamics {
 public:
  static constexpr int kStateSize = 2;
  static constexpr bool kDiscreteActions = false;

  [[nodiscard]] static EnvSpec spec() {
    const float high_speed = static_cast<float>(kMaxSpeed);
    return EnvSpec{.name = "Pendulum-v1",
                   .observation_space = Space::box({3}, {-1.0f, -1.0f, -high_speed}, {1.0f, 1.0f, high_speed}),
                   .action_space = Space::box({1}, {static_cast<float>(-kMaxTorque)}, {static_cast<float>(kMaxTorque)}),
                   .max_episode_steps = 200,
                   .reward_threshold = std::nullopt};
  }

  explicit PendulumDynamics(int num_envs)
      : theta_(static_cast<std::size_t>(num_envs)), theta_dot_(static_cast<std::size_t>(num_envs)) {}

  void reset(int i, Rng& rng) {
    // np_random.uniform(low=-high, high=high) with high = [pi, 1]: th first, then thdot.
    theta_[i] = rng.uniform(-kResetTheta, kResetTheta);
    theta_dot_[i] = rng.uniform(-kResetThetaDot, kResetThetaDot);
  }

  Transition step(int i, const float* action) {
    const double th = theta_[i];
    const double thdot = theta_dot_[i];
    // np.clip of a float32 array with Python-float bounds stays float32.
    const float u = std::min(std::max(action[0], static_cast<float>(-kMaxTorque)), static_cast<float>(kMaxTorque));

    const float torque_cost = static_cast<float>(0.001) * numpy::square(u);  // float32 * float32
    const double costs = numpy::square(angle_normalize(th)) + 0.1 * numpy::square(thdot) + torque_cost;

    double newthdot = thdot + (3 * kG / (2 * kL) * std::sin(th) + static_cast<float>(3.0 / (kM * kL * kL)) * u) * kDt;
    newthdot = std::min(std::max(newthdot, -kMaxSpeed), kMaxSpeed);
    theta_[i] = th + newthdot * kDt;
    theta_dot_[i] = newthdot;
    return Transition{.reward = -costs, .terminated = false};
  }

  void observe(int i, float* row, std::int64_t col_stride) const {
    row[0] = static_cast<float>(std::cos(theta_[i]));
    row[col_stride] = static_cast<float>(std::sin(theta_[i]));
    row[2 * col_stride] = static_cast<float>(theta_dot_[i]);
  }

  void get_state(int i, std::span<double> state) const {
    state[0] = theta_[i];
    state[1] = theta_dot_[i];
  }

  void set_state(int i, std::span<const double> state) {
    theta_[i] = state[0];
    theta_dot_[i] = state[1];
  }

 private:
  std::vector<double> theta_, theta_dot_;
};

}  // namespace

}  // namespace pysf::envs::pendulum

namespace pysf::envs {

std::unique_ptr<VectorEnv> make_pendulum_env(int num_envs, std::uint64_t seed) {
  return std::make_unique<BlockVectorEnv<pendulum::PendulumDynamics>>(num_envs, seed);
}

}  // namespace pysf::envs
