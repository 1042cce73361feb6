// measure_step_throughput: a single-thread C++ stepping loop over one VectorEnv block.
#include "envs/throughput.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "envs/rng.h"

namespace pysf::envs {

namespace {

// Enough distinct batches that the actions do not fall into a short cycle the branch predictor learns.
constexpr int kActionBatches = 16;

at::Tensor random_action_batches(const VectorEnv& env, std::uint64_t seed) {
  const Space& space = env.spec().action_space;
  const std::int64_t k = space.flat_size();
  at::Tensor actions = at::empty({kActionBatches, env.num_envs(), k}, at::kFloat);
  float* data = actions.data_ptr<float>();
  Rng rng(seed);
  for (std::int64_t j = 0; j < actions.numel(); ++j) {
    if (space.kind == Space::Kind::Discrete) {
      data[j] = static_cast<float>(rng.next() % static_cast<std::uint64_t>(space.n));
    } else {
      const auto element = static_cast<std::size_t>(j % k);
      data[j] = static_cast<float>(rng.uniform(space.low[element], space.high[element]));
    }
  }
  return actions;
}

}  // namespace

StepThroughput measure_step_throughput(VectorEnv& env, double min_seconds, std::uint64_t seed) {
  const int n = env.num_envs();
  const at::Tensor actions = random_action_batches(env, seed);
  const StepOutput out{.obs = at::empty({n, env.observation_size()}, at::kFloat),
                       .rewards = at::empty({n}, at::kFloat),
                       .terminated = at::empty({n}, at::kBool),
                       .truncated = at::empty({n}, at::kBool),
                       .episode_return = at::empty({n}, at::kFloat),
                       .episode_length = at::empty({n}, at::kInt)};
  std::vector<at::Tensor> batches;
  for (int b = 0; b < kActionBatches; ++b) batches.push_back(actions[b]);

  env.reset(out);
  // Read the clock about every 64k env-steps, so that small blocks do not time the clock itself.
  const int calls_per_check = std::max(1, 65536 / n);
  auto run = [&](int calls) {
    for (int c = 0; c < calls; ++c) env.step(batches[static_cast<std::size_t>(c % kActionBatches)], out);
  };
  run(calls_per_check);  // warm-up: caches, branch predictors, page faults of the outputs

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  std::int64_t calls = 0;
  double elapsed = 0.0;
  do {
    run(calls_per_check);
    calls += calls_per_check;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < min_seconds);
  return StepThroughput{.env_steps = calls * n, .seconds = elapsed};
}

}  // namespace pysf::envs
