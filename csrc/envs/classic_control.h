// The native classic-control envs: gymnasium 1.x's classic_control package, one factory per gymnasium
// id. Each env's physics model (a BlockVectorEnv Dynamics class) is private to its own .cpp, which
// defines the factory declared here; registry.cpp maps the ids to these factories.
//
// Adding an env: one .cpp with its constants and Dynamics in a namespace of its own (pysf::envs::cartpole: the
// envs share names such as kGravity, and the unity build compiles the folder as one translation unit) and its
// factory, the factory's declaration here, and one line in registry.cpp's table.
//
// Every factory returns a block of `num_envs` envs (num_envs >= 1, else std::invalid_argument) seeded
// with `seed` (see VectorEnv::seed); call reset() before stepping. Each reproduces gymnasium 1.4's env
// under its registered TimeLimit, operation for operation (the rounding of every float64 / float32
// step included), so that native trajectories are gymnasium's bit for bit. The state layouts below are
// those of VectorEnv::get_state / set_state, the doubles gymnasium keeps in env.unwrapped.state.
#pragma once

#include <cstdint>
#include <memory>

#include "envs/vector_env.h"

namespace pysf::envs {

/// CartPole-v1: balance a pole on a cart by pushing the cart left (action 0) or right (action 1).
///
/// CartPoleEnv (sutton_barto_reward=False, kinematics_integrator="euler"), TimeLimit 500, in float64:
///   - explicit Euler with tau = 0.02 on the Barto-Sutton-Anderson equations, force +-10 N;
///   - reward +1 on every step, the terminating one included;
///   - terminated when x leaves [-2.4, 2.4] or theta leaves [-12, 12] degrees (12 * 2 * pi / 360 rad);
///   - initial state uniform in [-0.05, 0.05) for each of the four values.
/// State: [x, x_dot, theta, theta_dot]. Observation: the same four values as float32; space
/// Box(-high, high) with high = [4.8, inf, 2 * theta_threshold, inf].
[[nodiscard]] std::unique_ptr<VectorEnv> make_cartpole_env(int num_envs, std::uint64_t seed);

/// Acrobot-v1: swing the free end of a two-link chain above a height by torquing the middle joint
/// (actions 0, 1, 2 apply -1, 0, +1 N m).
///
/// AcrobotEnv ("book" dynamics, torque_noise_max = 0), TimeLimit 500, in float64:
///   - one classic RK4 step of dt = 0.2 s on (theta1, theta2, dtheta1, dtheta2) with the torque held;
///   - then both angles wrapped into [-pi, pi] (by repeated +-2 pi, as gymnasium's wrap) and the
///     velocities clipped to [-4 pi, 4 pi] and [-9 pi, 9 pi];
///   - terminated when -cos(theta1) - cos(theta2 + theta1) > 1; reward -1, or 0 on the terminating step;
///   - initial state uniform in [-0.1, 0.1) for each value, rounded to float32 (gymnasium stores the
///     reset state as float32; from the first step on it is float64).
/// State: [theta1, theta2, dtheta1, dtheta2]. Observation (float32):
/// [cos theta1, sin theta1, cos theta2, sin theta2, dtheta1, dtheta2].
[[nodiscard]] std::unique_ptr<VectorEnv> make_acrobot_env(int num_envs, std::uint64_t seed);

/// MountainCar-v0: drive an under-powered car up the right hill (actions 0, 1, 2: push left, none, right).
///
/// MountainCarEnv (goal_velocity 0), TimeLimit 200, in float64:
///   velocity += (action - 1) * 0.001 + cos(3 * position) * (-0.0025), clipped to [-0.07, 0.07];
///   position += velocity, clipped to [-1.2, 0.6]; at the left wall a negative velocity becomes 0;
///   terminated when position >= 0.5 (and velocity >= 0); reward -1 on every step;
///   initial position uniform in [-0.6, -0.4), velocity 0.
/// State and observation: [position, velocity] (float64 / float32).
[[nodiscard]] std::unique_ptr<VectorEnv> make_mountain_car_env(int num_envs, std::uint64_t seed);

/// MountainCarContinuous-v0: the same car with a continuous engine force, action in Box(-1, 1, (1,)).
///
/// Continuous_MountainCarEnv, TimeLimit 999:
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
[[nodiscard]] std::unique_ptr<VectorEnv> make_mountain_car_continuous_env(int num_envs, std::uint64_t seed);

/// Pendulum-v1: swing a pendulum up and hold it upright with a torque in Box(-2, 2, (1,)).
///
/// PendulumEnv (g = 10), TimeLimit 200; state in float64:
///   u = clip(action, -2, 2) (float32);
///   reward = -(angle_normalize(th)^2 + 0.1 * thdot^2 + 0.001 * u^2), with angle_normalize(x) =
///   ((x + pi) mod 2 pi) - pi, of the state *before* the step;
///   thdot += (15 sin th + 3 u) * 0.05, clipped to [-8, 8]; th += thdot * 0.05 (semi-implicit Euler);
///   never terminated; initial th uniform in [-pi, pi), thdot uniform in [-1, 1).
/// State: [th, thdot] (th is not wrapped). Observation (float32): [cos th, sin th, thdot].
[[nodiscard]] std::unique_ptr<VectorEnv> make_pendulum_env(int num_envs, std::uint64_t seed);

}  // namespace pysf::envs
