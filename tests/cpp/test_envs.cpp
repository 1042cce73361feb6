// Tests of the native envs (csrc/envs): registry, spaces, dynamics spot checks, TimeLimit, auto-reset,
// episode bookkeeping, strided outputs, seeding, argument validation, plus a throughput print.
// Parity with gymnasium itself is tested step by step in tests/envs/test_native_envs.py.
#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "envs/registry.h"
#include "envs/throughput.h"
#include "envs/vector_env.h"

using pysf::envs::make_vector_env;
using pysf::envs::native_env_names;
using pysf::envs::Space;
using pysf::envs::StepOutput;
using pysf::envs::VectorEnv;

namespace {

StepOutput make_outputs(const VectorEnv& env) {
  const int n = env.num_envs();
  return StepOutput{.obs = at::zeros({n, env.observation_size()}, at::kFloat),
                    .rewards = at::zeros({n}, at::kFloat),
                    .terminated = at::zeros({n}, at::kBool),
                    .truncated = at::zeros({n}, at::kBool),
                    .episode_return = at::zeros({n}, at::kFloat),
                    .episode_length = at::zeros({n}, at::kInt)};
}

// Valid actions for every env: action `value` for a Discrete space, `value` in every element for a Box.
at::Tensor constant_actions(const VectorEnv& env, float value) {
  return at::full({env.num_envs(), env.spec().action_space.flat_size()}, value, at::kFloat);
}

bool same(const at::Tensor& a, const at::Tensor& b) { return at::equal(a, b); }

}  // namespace

TEST_CASE(registry_lists_the_native_envs_and_rejects_unknown_names) {
  const std::vector<std::string> expected = {"CartPole-v1", "Acrobot-v1",  "MountainCar-v0", "MountainCarContinuous-v0",
                                             "Pendulum-v1", "ConnectFour-v0"};
  EXPECT(native_env_names() == expected);
  for (const auto& name : expected) EXPECT(make_vector_env(name, 4, 0)->spec().name == name);
  EXPECT_THROWS(make_vector_env("CartPole-v0", 1, 0), std::invalid_argument, "available: CartPole-v1, Acrobot-v1");
  EXPECT_THROWS(make_vector_env("CartPole-v1", 0, 0), std::invalid_argument, "num_envs");
  // A two-player game pairs its slots into seats (board_games.h): an odd block cannot be split into games.
  EXPECT_THROWS(make_vector_env("ConnectFour-v0", 3, 0), std::invalid_argument, "num_envs must be even, got 3");
}

TEST_CASE(specs_have_gymnasium_spaces_and_time_limits) {
  const auto cartpole = make_vector_env("CartPole-v1", 1, 0);
  EXPECT(cartpole->spec().action_space == Space::discrete(2));
  EXPECT(cartpole->spec().observation_space.shape == std::vector<std::int64_t>{4});
  EXPECT(cartpole->spec().observation_space.high[0] == 4.8f);
  EXPECT(std::isinf(cartpole->spec().observation_space.high[1]));
  EXPECT(cartpole->spec().max_episode_steps == 500);

  const auto pendulum = make_vector_env("Pendulum-v1", 1, 0);
  EXPECT(pendulum->spec().action_space == Space::box({1}, {-2.0f}, {2.0f}));
  EXPECT(pendulum->spec().observation_space == Space::box({3}, {-1.0f, -1.0f, -8.0f}, {1.0f, 1.0f, 8.0f}));
  EXPECT(pendulum->spec().max_episode_steps == 200);
  EXPECT(!pendulum->spec().reward_threshold.has_value());

  EXPECT(make_vector_env("Acrobot-v1", 1, 0)->observation_size() == 6);
  EXPECT(make_vector_env("Acrobot-v1", 1, 0)->spec().max_episode_steps == 500);
  EXPECT(make_vector_env("MountainCar-v0", 1, 0)->spec().max_episode_steps == 200);
  EXPECT(make_vector_env("MountainCarContinuous-v0", 1, 0)->spec().max_episode_steps == 999);
  EXPECT(make_vector_env("MountainCarContinuous-v0", 1, 0)->spec().action_space.to_string() ==
         "Box(-1, 1, (1,), float32)");
}

TEST_CASE(cartpole_step_from_rest_matches_the_equations) {
  auto env = make_vector_env("CartPole-v1", 1, 0);
  const StepOutput out = make_outputs(*env);
  env->reset(out);
  env->set_state(0, std::vector<double>{0.0, 0.0, 0.0, 0.0}, 0);
  env->step(at::ones({1}, at::kLong), out);  // push right with 10 N

  const double temp = 10.0 / 1.1;
  const double thetaacc = (0.0 - 1.0 * temp) / (0.5 * (4.0 / 3.0 - 0.1 * 1.0 / 1.1));
  const double xacc = temp - 0.05 * thetaacc * 1.0 / 1.1;
  const std::vector<double> state = env->get_state(0);
  EXPECT(state[0] == 0.0 && state[2] == 0.0);  // Euler: positions move with the old velocities
  EXPECT(std::abs(state[1] - 0.02 * xacc) < 1e-15);
  EXPECT(std::abs(state[3] - 0.02 * thetaacc) < 1e-15);
  EXPECT(out.obs[0][1].item<float>() == static_cast<float>(state[1]));
  EXPECT(out.rewards[0].item<float>() == 1.0f);
  EXPECT(!out.terminated[0].item<bool>() && !out.truncated[0].item<bool>());
  EXPECT(env->elapsed_steps(0) == 1);
}

TEST_CASE(termination_auto_resets_and_reports_the_finished_episode) {
  auto env = make_vector_env("CartPole-v1", 2, 7);
  const StepOutput out = make_outputs(*env);
  env->reset(out);
  // Env 0 a step from falling over, 41 steps into its episode; env 1 balanced.
  env->set_state(0, std::vector<double>{0.0, 0.0, 0.2094, 2.0}, 41, 41.0);
  env->set_state(1, std::vector<double>{0.0, 0.0, 0.0, 0.0}, 5, 5.0);
  out.episode_return.fill_(-7.0f);
  out.episode_length.fill_(-7);
  env->step(at::zeros({2}, at::kLong), out);

  EXPECT(out.terminated[0].item<bool>() && !out.truncated[0].item<bool>());
  EXPECT(out.rewards[0].item<float>() == 1.0f);  // the terminating step is rewarded too
  EXPECT(out.episode_return[0].item<float>() == 42.0f);
  EXPECT(out.episode_length[0].item<int>() == 42);
  EXPECT(env->elapsed_steps(0) == 0);
  // The row holds the first observation of the next episode: every value in [-0.05, 0.05).
  const std::vector<double> fresh = env->get_state(0);
  for (int j = 0; j < 4; ++j) {
    EXPECT(std::abs(fresh[j]) <= 0.05);
    EXPECT(out.obs[0][j].item<float>() == static_cast<float>(fresh[j]));
  }
  // Env 1 did not finish: its episode columns are untouched.
  EXPECT(!out.terminated[1].item<bool>());
  EXPECT(out.episode_return[1].item<float>() == -7.0f && out.episode_length[1].item<int>() == -7);
  EXPECT(env->elapsed_steps(1) == 6);
}

TEST_CASE(time_limit_truncates_at_max_episode_steps) {
  auto env = make_vector_env("Pendulum-v1", 1, 3);
  const StepOutput out = make_outputs(*env);
  env->reset(out);
  env->set_state(0, std::vector<double>{0.5, 0.0}, 198);
  env->step(constant_actions(*env, 0.0f), out);
  EXPECT(!out.truncated[0].item<bool>() && env->elapsed_steps(0) == 199);
  env->step(constant_actions(*env, 0.0f), out);
  EXPECT(out.truncated[0].item<bool>() && !out.terminated[0].item<bool>());
  EXPECT(out.episode_length[0].item<int>() == 200);
  EXPECT(env->elapsed_steps(0) == 0);
  EXPECT_THROWS(env->set_state(0, std::vector<double>{0.0, 0.0}, 200), std::invalid_argument, "elapsed_steps");
}

TEST_CASE(box_actions_are_clipped_where_gymnasium_clips_them) {
  // MountainCarContinuous moves with the clipped force but charges the unclipped action in the reward.
  auto a = make_vector_env("MountainCarContinuous-v0", 1, 0);
  auto b = make_vector_env("MountainCarContinuous-v0", 1, 0);
  const StepOutput out_a = make_outputs(*a), out_b = make_outputs(*b);
  a->reset(out_a);
  b->reset(out_b);
  a->step(constant_actions(*a, 5.0f), out_a);
  b->step(constant_actions(*b, 1.0f), out_b);
  // Equal up to rounding only: as in gymnasium, a clipped force is a Python float (float64 arithmetic)
  // while an unclipped one is a float32.
  const std::vector<double> state_a = a->get_state(0), state_b = b->get_state(0);
  EXPECT(std::abs(state_a[0] - state_b[0]) < 1e-6 && std::abs(state_a[1] - state_b[1]) < 1e-7);
  EXPECT(std::abs(out_a.rewards[0].item<float>() - -2.5f) < 1e-6f);
  EXPECT(std::abs(out_b.rewards[0].item<float>() - -0.1f) < 1e-6f);

  // Pendulum clips the torque before both the dynamics and the cost.
  auto c = make_vector_env("Pendulum-v1", 1, 0);
  auto d = make_vector_env("Pendulum-v1", 1, 0);
  const StepOutput out_c = make_outputs(*c), out_d = make_outputs(*d);
  c->reset(out_c);
  d->reset(out_d);
  c->step(constant_actions(*c, -9.0f), out_c);
  d->step(constant_actions(*d, -2.0f), out_d);
  EXPECT(c->get_state(0) == d->get_state(0));
  EXPECT(out_c.rewards[0].item<float>() == out_d.rewards[0].item<float>());
}

TEST_CASE(strided_output_views_are_written_in_place) {
  for (const auto& name : native_env_names()) {
    const int n = 6, steps = 40;  // even: a two-player game needs whole games
    auto env = make_vector_env(name, n, 11);
    auto twin = make_vector_env(name, n, 11);
    const int dim = env->observation_size();
    // Trajectory-buffer layout [N, T, ...]: slicing time step t gives row strides of T * (dim + 2).
    at::Tensor obs_buffer = at::full({n, steps + 1, dim + 2}, -1.0f);
    at::Tensor reward_buffer = at::full({n, steps}, -1.0f);
    at::Tensor done_buffer = at::zeros({2, n, steps}, at::kBool);
    at::Tensor episode_buffer = at::zeros({n, 3}, at::kFloat);
    at::Tensor length_buffer = at::zeros({n, 3}, at::kInt);
    const StepOutput twin_out = make_outputs(*twin);

    env->reset(StepOutput{.obs = obs_buffer.select(1, 0).slice(1, 1, dim + 1)});
    twin->reset(twin_out);
    EXPECT(same(obs_buffer.select(1, 0).slice(1, 1, dim + 1), twin_out.obs));
    const at::Tensor actions = at::randint(0, 2, {steps, n, 1}, at::kFloat);  // valid in every action space
    for (int t = 0; t < steps; ++t) {
      const StepOutput view{.obs = obs_buffer.select(1, t + 1).slice(1, 1, dim + 1),
                            .rewards = reward_buffer.select(1, t),
                            .terminated = done_buffer[0].select(1, t),
                            .truncated = done_buffer[1].select(1, t),
                            .episode_return = episode_buffer.select(1, 1),
                            .episode_length = length_buffer.select(1, 2)};
      env->step(actions[t], view);
      twin->step(actions[t].contiguous(), twin_out);
      EXPECT_MSG(same(view.obs, twin_out.obs) && same(view.rewards, twin_out.rewards) &&
                     same(view.terminated, twin_out.terminated) && same(view.truncated, twin_out.truncated),
                 name + " step " + std::to_string(t));
    }
    // The padding columns around each observation were never written.
    EXPECT_MSG(obs_buffer.select(2, 0).eq(-1.0f).all().item<bool>(), name);
    EXPECT_MSG(obs_buffer.select(2, dim + 1).eq(-1.0f).all().item<bool>(), name);
  }
}

TEST_CASE(seeding_is_deterministic_per_env_index) {
  for (const auto& name : native_env_names()) {
    // Even block sizes: a two-player game needs whole games.
    auto small = make_vector_env(name, 4, 42);
    auto large = make_vector_env(name, 8, 42);
    auto other_seed = make_vector_env(name, 4, 43);
    const StepOutput out_small = make_outputs(*small), out_large = make_outputs(*large),
                     out_other = make_outputs(*other_seed);
    small->reset(out_small);
    large->reset(out_large);
    other_seed->reset(out_other);
    // Env i is the same whatever the block size; envs and seeds differ from one another.
    EXPECT_MSG(same(out_small.obs, out_large.obs.slice(0, 0, 4)), name);
    EXPECT_MSG(!same(out_small.obs[0], out_small.obs[1]), name);
    EXPECT_MSG(!same(out_small.obs, out_other.obs), name);

    // Re-seeding restarts the streams: the next reset repeats the first.
    const at::Tensor first = out_small.obs.clone();
    small->seed(42);
    small->reset(out_small);
    EXPECT_MSG(same(out_small.obs, first), name);
  }
}

TEST_CASE(invalid_actions_throw_before_any_env_moves) {
  auto env = make_vector_env("CartPole-v1", 4, 0);
  const StepOutput out = make_outputs(*env);
  EXPECT_THROWS(env->step(at::zeros({4}, at::kLong), out), std::logic_error, "before the first reset");
  env->reset(out);
  const std::vector<double> before = env->get_state(3);

  EXPECT_THROWS(env->step(at::tensor({0, 1, 2, 0}, at::kLong), out), std::invalid_argument,
                "invalid action 2 for env 2: the action space is Discrete(2)");
  EXPECT_THROWS(env->step(at::tensor({0.0f, 1.0f, 1.0f, 0.5f}), out), std::invalid_argument, "action 0.5 for env 3");
  EXPECT_THROWS(env->step(at::tensor({0, -1, 0, 0}, at::kInt), out), std::invalid_argument, "action -1 for env 1");
  EXPECT_THROWS(env->step(at::full({4}, std::numeric_limits<float>::quiet_NaN()), out), std::invalid_argument,
                "action nan for env 0");
  EXPECT_THROWS(env->step(at::zeros({4, 2}, at::kLong), out), std::invalid_argument, "must be a CPU tensor of shape");
  EXPECT_THROWS(env->step(at::zeros({3}, at::kLong), out), std::invalid_argument, "[4] or [4, 1]");
  EXPECT_THROWS(env->step(at::zeros({4}, at::kBool), out), std::invalid_argument, "dtype int64");
  EXPECT(env->get_state(3) == before);
  EXPECT(env->elapsed_steps(3) == 0);

  auto bad_outputs = make_outputs(*env);
  bad_outputs.rewards = at::zeros({4}, at::kDouble);
  EXPECT_THROWS(env->step(at::zeros({4}, at::kLong), bad_outputs), std::invalid_argument, "StepOutput.rewards");
  bad_outputs = make_outputs(*env);
  bad_outputs.obs = at::zeros({4, 5});
  EXPECT_THROWS(env->step(at::zeros({4}, at::kLong), bad_outputs), std::invalid_argument, "StepOutput.obs");
  bad_outputs = make_outputs(*env);
  bad_outputs.terminated = at::zeros({1}, at::kBool).expand({4});  // four envs writing one flag
  EXPECT_THROWS(env->step(at::zeros({4}, at::kLong), bad_outputs), std::invalid_argument, "StepOutput.terminated");
  EXPECT(env->get_state(3) == before);

  EXPECT_THROWS(env->get_state(4), std::out_of_range, "env index 4");
  EXPECT_THROWS(env->set_state(0, std::vector<double>{0.0}, 0), std::invalid_argument, "4 state values");

  auto pendulum = make_vector_env("Pendulum-v1", 2, 0);
  const StepOutput pendulum_out = make_outputs(*pendulum);
  pendulum->reset(pendulum_out);
  EXPECT_THROWS(pendulum->step(at::zeros({2, 2}), pendulum_out), std::invalid_argument, "[2, 1] or [2]");
  pendulum->step(at::zeros({2}), pendulum_out);  // [N] is accepted for a one-element Box
  pendulum->step(at::zeros({2, 1}, at::kDouble), pendulum_out);
}

TEST_CASE(throughput_print) {
  // Not a benchmark (see benchmarks/native_envs.py): a smoke run that prints the order of magnitude.
  for (const auto& name : native_env_names()) {
    for (const int n : {2, 4096}) {  // 2, not 1: a two-player game needs a whole game
      auto env = make_vector_env(name, n, 0);
      const auto result = pysf::envs::measure_step_throughput(*env, 0.05, 1);
      EXPECT(result.env_steps > 0);
      std::printf("  %-26s %5d envs: %8.1f ns/env-step, %7.2f M env-steps/s\n", name.c_str(), n,
                  result.nanoseconds_per_env_step(), result.env_steps_per_second() / 1e6);
    }
  }
}
