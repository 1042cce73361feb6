// Acrobot-v1 physics. Every expression keeps gymnasium's operand order: NumPy rounds each operation
// in float64, and since the acrobot is chaotic, only the same order keeps native trajectories on
// gymnasium's for a whole 500-step episode.
#include "envs/classic_control.h"

#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numbers>
#include <span>
#include <vector>

#include "envs/block_vector_env.h"
#include "envs/numpy_scalar_math.h"
#include "envs/rng.h"

namespace pysf::envs::acrobot {

namespace {

constexpr double kPi = std::numbers::pi;
constexpr double kDt = 0.2;
constexpr double kLinkLength1 = 1.0;
constexpr double kLinkMass1 = 1.0;
constexpr double kLinkMass2 = 1.0;
constexpr double kLinkComPos1 = 0.5;
constexpr double kLinkComPos2 = 0.5;
constexpr double kLinkMoi = 1.0;
constexpr double kMaxVel1 = 4 * kPi;
constexpr double kMaxVel2 = 9 * kPi;
constexpr double kGravity = 9.8;
constexpr std::array<double, 3> kTorques = {-1.0, 0.0, +1.0};
constexpr double kResetBound = 0.1;

using State = std::array<double, 4>;  // theta1, theta2, dtheta1, dtheta2

// AcrobotEnv._dsdt, "book" variant. `x ** 2` of the (NumPy float64) state goes through pow() as in NumPy;
// the squares of the Python float constants (0.5 ** 2, 1.0 ** 2) are exact either way.
State derivatives(const State& s, double torque) {
  constexpr double m1 = kLinkMass1, m2 = kLinkMass2, l1 = kLinkLength1;
  constexpr double lc1 = kLinkComPos1, lc2 = kLinkComPos2, I1 = kLinkMoi, I2 = kLinkMoi, g = kGravity;
  const double theta1 = s[0], theta2 = s[1], dtheta1 = s[2], dtheta2 = s[3];
  const double a = torque;
  // Each of these is called more than once with the same argument in gymnasium: same value, one call.
  const double cos_theta2 = std::cos(theta2);
  const double sin_theta2 = std::sin(theta2);
  const double d1 = m1 * (lc1 * lc1) + m2 * ((l1 * l1) + (lc2 * lc2) + 2 * l1 * lc2 * cos_theta2) + I1 + I2;
  const double d2 = m2 * ((lc2 * lc2) + l1 * lc2 * cos_theta2) + I2;
  const double phi2 = m2 * lc2 * g * std::cos(theta1 + theta2 - kPi / 2.0);
  const double phi1 = -m2 * l1 * lc2 * numpy::square(dtheta2) * sin_theta2 -
                      2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin_theta2 +
                      (m1 * lc1 + m2 * l1) * g * std::cos(theta1 - kPi / 2) + phi2;
  const double ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * numpy::square(dtheta1) * sin_theta2 - phi2) /
                          (m2 * (lc2 * lc2) + I2 - numpy::square(d2) / d1);
  const double ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
  return {dtheta1, dtheta2, ddtheta1, ddtheta2};
}

// y + h * k, element-wise (NumPy's `y0 + dt2 * k1`).
State advanced(const State& y, double h, const State& k) {
  return {y[0] + h * k[0], y[1] + h * k[1], y[2] + h * k[2], y[3] + h * k[3]};
}

// acrobot.rk4 over t = [0, dt]: one step. The torque rides along as a fifth state with derivative 0,
// which leaves it unchanged, so it is passed separately here.
State rk4_step(const State& y0, double torque) {
  constexpr double dt = kDt - 0;
  constexpr double dt2 = dt / 2.0;
  const State k1 = derivatives(y0, torque);
  const State k2 = derivatives(advanced(y0, dt2, k1), torque);
  const State k3 = derivatives(advanced(y0, dt2, k2), torque);
  const State k4 = derivatives(advanced(y0, dt, k3), torque);
  State y;
  for (std::size_t j = 0; j < y.size(); ++j) y[j] = y0[j] + dt / 6.0 * (k1[j] + 2 * k2[j] + 2 * k3[j] + k4[j]);
  return y;
}

// acrobot.wrap: subtracts or adds the period one at a time (not fmod), which rounds differently.
double wrap(double x, double low, double high) {
  const double diff = high - low;
  while (x > high) x = x - diff;
  while (x < low) x = x + diff;
  return x;
}

// acrobot.bound: min(max(x, low), high).
double bound(double x, double low, double high) {
  const double at_least_low = low > x ? low : x;  // Python's max returns its first argument on ties
  return high < at_least_low ? high : at_least_low;
}

// Acrobot-v1 as a BlockVectorEnv physics model (what it computes: classic_control.h).
class AcrobotDynamics {
 public:
  static constexpr int kStateSize = 4;
  static constexpr bool kDiscreteActions = true;

  [[nodiscard]] static EnvSpec spec() {
    const std::vector<float> high = {1.0f, 1.0f, 1.0f, 1.0f, static_cast<float>(kMaxVel1), static_cast<float>(kMaxVel2)};
    std::vector<float> low(high.size());
    for (std::size_t j = 0; j < high.size(); ++j) low[j] = -high[j];
    return EnvSpec{.name = "Acrobot-v1",
                   .observation_space = Space::box({6}, low, high),
                   .action_space = Space::discrete(3),
                   .max_episode_steps = 500,
                   .reward_threshold = -100.0};
  }

  explicit AcrobotDynamics(int num_envs)
      : theta1_(static_cast<std::size_t>(num_envs)),
        theta2_(static_cast<std::size_t>(num_envs)),
        dtheta1_(static_cast<std::size_t>(num_envs)),
        dtheta2_(static_cast<std::size_t>(num_envs)) {}

  void reset(int i, Rng& rng) {
    // np_random.uniform(-0.1, 0.1, size=(4,)).astype(np.float32): float64 draws rounded to float32.
    auto draw = [&rng] { return static_cast<double>(static_cast<float>(rng.uniform(-kResetBound, kResetBound))); };
    theta1_[i] = draw();
    theta2_[i] = draw();
    dtheta1_[i] = draw();
    dtheta2_[i] = draw();
  }

  Transition step(int i, std::int32_t action) {
    const State next = rk4_step({theta1_[i], theta2_[i], dtheta1_[i], dtheta2_[i]}, kTorques[action]);
    const double theta1 = wrap(next[0], -kPi, kPi);
    const double theta2 = wrap(next[1], -kPi, kPi);
    theta1_[i] = theta1;
    theta2_[i] = theta2;
    dtheta1_[i] = bound(next[2], -kMaxVel1, kMaxVel1);
    dtheta2_[i] = bound(next[3], -kMaxVel2, kMaxVel2);
    const bool terminated = -std::cos(theta1) - std::cos(theta2 + theta1) > 1.0;
    return Transition{.reward = terminated ? 0.0 : -1.0, .terminated = terminated};
  }

  void observe(int i, float* row, std::int64_t col_stride) const {
    row[0] = static_cast<float>(std::cos(theta1_[i]));
    row[col_stride] = static_cast<float>(std::sin(theta1_[i]));
    row[2 * col_stride] = static_cast<float>(std::cos(theta2_[i]));
    row[3 * col_stride] = static_cast<float>(std::sin(theta2_[i]));
    row[4 * col_stride] = static_cast<float>(dtheta1_[i]);
    row[5 * col_stride] = static_cast<float>(dtheta2_[i]);
  }

  void get_state(int i, std::span<double> state) const {
    state[0] = theta1_[i];
    state[1] = theta2_[i];
    state[2] = dtheta1_[i];
    state[3] = dtheta2_[i];
  }

  void set_state(int i, std::span<const double> state) {
    theta1_[i] = state[0];
    theta2_[i] = state[1];
    dtheta1_[i] = state[2];
    dtheta2_[i] = state[3];
  }

 private:
  std::vector<double> theta1_, theta2_, dtheta1_, dtheta2_;
};

}  // namespace

}  // namespace pysf::envs::acrobot

namespace pysf::envs {

std::unique_ptr<VectorEnv> make_acrobot_env(int num_envs, std::uint64_t seed) {
  return std::make_unique<BlockVectorEnv<acrobot::AcrobotDynamics>>(num_envs, seed);
}

}  // namespace pysf::envs
