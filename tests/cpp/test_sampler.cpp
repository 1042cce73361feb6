// The native sampler end to end, in C++ only (so it runs under ASan and TSan): many runner threads,
// several inference threads, an instrumented counting env and a fake policy whose outputs encode their
// inputs. Checks that every env step lands in exactly one trajectory, in order, with its outputs.
#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <optional>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buffers/block_pool.h"
#include "check.h"
#include "envs/block_vector_env.h"
#include "sampler/sampler.h"
#include "sampler/worker_mailbox.h"

namespace {

using pysf::buffers::TrajectoryBuffers;
using pysf::envs::EnvSpec;
using pysf::envs::Rng;
using pysf::envs::Space;
using pysf::envs::Transition;
using pysf::inference::PolicyOutput;
using pysf::inference::PolicyRunner;
using pysf::core::TensorMap;
using pysf::sampler::Sampler;
using pysf::sampler::SamplerConfig;

/// Observation [env_id, counter, episode_step]: counter counts every step the env ever took, so each
/// transition is identified by (env_id, counter). Episodes end after 3 + env_id % 4 steps.
class CounterDynamics {
 public:
  static constexpr int kStateSize = 3;
  static constexpr bool kDiscreteActions = true;

  static EnvSpec spec() {
    EnvSpec spec;
    spec.name = "Counter-v0";
    spec.observation_space = Space::box({3}, {0, 0, 0}, {1e9F, 1e9F, 1e9F});
    spec.action_space = Space::discrete(2);
    spec.max_episode_steps = 1000;
    return spec;
  }

  explicit CounterDynamics(int num_envs) : state_(static_cast<std::size_t>(num_envs), {0, 0, 0}) {}

  void reset(int i, Rng& /*rng*/) { state_[static_cast<std::size_t>(i)][2] = 0; }

  Transition step(int i, std::int32_t action) {
    auto& s = state_[static_cast<std::size_t>(i)];
    s[1] += 1;
    s[2] += 1;
    const bool terminated = s[2] >= 3 + static_cast<std::int64_t>(s[0]) % 4;
    return Transition{static_cast<double>(action) + 1.0, terminated};  // reward tells which action was taken
  }

  void observe(int i, float* row, std::int64_t col_stride) const {
    for (int j = 0; j < 3; ++j) row[j * col_stride] = static_cast<float>(state_[static_cast<std::size_t>(i)][j]);
  }
  void get_state(int i, std::span<double> state) const {
    for (int j = 0; j < 3; ++j) state[j] = static_cast<double>(state_[static_cast<std::size_t>(i)][j]);
  }
  void set_state(int i, std::span<const double> state) {
    for (int j = 0; j < 3; ++j) state_[static_cast<std::size_t>(i)][j] = static_cast<std::int64_t>(state[j]);
  }

 private:
  std::vector<std::array<std::int64_t, 3>> state_;
};

/// Policy p: actions = (counter + p) % 2 (so rewards reveal that the right policy's action reached the right
/// env), values = counter, new RNN state = old state + 1 (so the sampler's reset-on-done of RNN states is
/// visible), weights version 7 + p.
class EchoPolicy final : public PolicyRunner {
 public:
  explicit EchoPolicy(int policy_id = 0) : policy_id_(policy_id) {}
  PolicyOutput forward(const TensorMap& obs, const at::Tensor& rnn_states, bool /*deterministic*/) override {
    const at::Tensor counters = obs.at("obs").select(1, 1);
    PolicyOutput output;
    output.outputs.insert_or_assign("actions", at::remainder(counters + policy_id_, 2).to(at::kLong));
    output.outputs.insert_or_assign("action_logits", at::zeros({counters.size(0), 2}));
    output.outputs.insert_or_assign("log_prob_actions", at::zeros({counters.size(0)}));
    output.outputs.insert_or_assign("values", counters.clone());
    output.outputs.insert_or_assign("new_rnn_states", rnn_states + 1.0);
    output.policy_version = 7 + policy_id_;
    calls.fetch_add(1);
    rows.fetch_add(counters.size(0));
    return output;
  }
  std::atomic<int> calls{0};
  std::atomic<std::int64_t> rows{0};

 private:
  int policy_id_;
};

TrajectoryBuffers make_buffers(std::int64_t num_blocks, std::int64_t block_rows, std::int64_t rollout,
                               std::int64_t obs_size = 3) {
  const std::int64_t rows = num_blocks * block_rows;
  TrajectoryBuffers b;
  b.obs.insert_or_assign("obs", at::full({rows, rollout + 1, obs_size}, -1.0F));
  b.rnn_states = at::full({rows, rollout + 1, 2}, -1.0F);
  b.actions = at::full({rows, rollout, 1}, -1.0F);
  b.action_logits = at::full({rows, rollout, 2}, -1.0F);
  b.log_prob_actions = at::full({rows, rollout}, -1.0F);
  b.values = at::full({rows, rollout + 1}, -1.0F);
  b.rewards = at::full({rows, rollout}, -1.0F);
  b.dones = at::zeros({rows, rollout}, at::kBool);
  b.time_outs = at::zeros({rows, rollout}, at::kBool);
  b.policy_version = at::full({rows, rollout}, -1, at::kInt);
  b.policy_id = at::full({rows, rollout}, -1, at::kInt);
  b.block_rows = block_rows;
  return b;
}

SamplerConfig counter_config(int workers, int envs_per_worker, int splits, int inference_threads) {
  SamplerConfig config;
  config.native_env_name = "Counter-v0";
  config.num_native_workers = workers;
  config.envs_per_native_worker = envs_per_worker;
  config.worker_num_splits = splits;
  config.inference.num_threads = inference_threads;
  config.make_env = [](const pysf::sampler::SplitAssignment& assignment) {
    const auto num_envs = static_cast<int>(assignment.num_envs());
    auto env = std::make_unique<pysf::envs::BlockVectorEnv<CounterDynamics>>(num_envs, 0);
    for (int i = 0; i < num_envs; ++i) {
      const double state[3] = {static_cast<double>(assignment.first_env_id + i), 0.0, 0.0};
      env->set_state(i, state, 0);
    }
    return env;
  };
  return config;
}

struct Collected {
  std::map<int, std::vector<std::int64_t>> counters_by_env;  // env id -> counters seen at steps 0..T-1
  int blocks = 0;
};

/// Checks one block's content and records the counters it holds. With several policies and a fixed mapping, env e
/// (one agent) acts for policy e % num_policies (split_assignment.h); with a redrawn one, the policy recorded at
/// each step acted in it, and a row's policy changes only right after an episode end. `policies_seen` collects
/// the (env, policy) pairs.
void check_block(const TrajectoryBuffers& buffers, std::int64_t block, Collected& collected, int num_policies = 1,
                 bool fixed_mapping = true, std::set<std::pair<int, int>>* policies_seen = nullptr) {
  const std::int64_t rollout = buffers.rollout();
  const at::Tensor rows = at::arange(block * buffers.block_rows, (block + 1) * buffers.block_rows);
  // Copies of the block (accessors need tensors that outlive them).
  const at::Tensor obs = buffers.obs.at("obs").index_select(0, rows);
  const at::Tensor rnn = buffers.rnn_states.index_select(0, rows);
  const at::Tensor value_rows = buffers.values.index_select(0, rows);
  const at::Tensor reward_rows = buffers.rewards.index_select(0, rows);
  const at::Tensor done_rows = buffers.dones.index_select(0, rows);
  const at::Tensor policy_rows = buffers.policy_id.index_select(0, rows);
  const at::Tensor version_rows = buffers.policy_version.index_select(0, rows);
  const auto obs_a = obs.accessor<float, 3>();
  const auto values = value_rows.accessor<float, 2>();
  const auto rewards = reward_rows.accessor<float, 2>();
  const auto dones = done_rows.accessor<bool, 2>();
  const auto policies = policy_rows.accessor<int, 2>();
  const auto versions = version_rows.accessor<int, 2>();
  const auto rnn_a = rnn.accessor<float, 3>();
  for (std::int64_t r = 0; r < buffers.block_rows; ++r) {
    const int env_id = static_cast<int>(obs_a[r][0][0]);
    for (std::int64_t t = 0; t < rollout; ++t) {
      const auto counter = static_cast<std::int64_t>(obs_a[r][t][1]);
      EXPECT(obs_a[r][t][0] == static_cast<float>(env_id));
      EXPECT_MSG(static_cast<std::int64_t>(obs_a[r][t + 1][1]) == counter + 1, "counters increase by one along a row");
      EXPECT(values[r][t] == static_cast<float>(counter));
      const int policy = fixed_mapping ? env_id % num_policies : policies[r][t];
      EXPECT(policy >= 0 && policy < num_policies);
      if (!fixed_mapping && t > 0 && policies[r][t] != policies[r][t - 1]) {
        EXPECT_MSG(dones[r][t - 1], "the policy of a row changes only after an episode end");
      }
      if (policies_seen != nullptr) policies_seen->emplace(env_id, policy);
      // the action its policy chose for this very step
      EXPECT(rewards[r][t] == static_cast<float>((counter + policy) % 2 + 1));
      EXPECT(policies[r][t] == policy && versions[r][t] == 7 + policy);
      const bool episode_ended = obs_a[r][t + 1][2] == 0.0F;
      EXPECT(dones[r][t] == episode_ended);
      // RNN state: +1 per step, zeroed at episode ends (and it starts at 0 for every env).
      const float expected_rnn = episode_ended ? 0.0F : rnn_a[r][t][0] + 1.0F;
      EXPECT(rnn_a[r][t + 1][0] == expected_rnn);
      collected.counters_by_env[env_id].push_back(counter);
    }
  }
  ++collected.blocks;
}

void expect_exactly_once(const Collected& collected, int num_envs, std::int64_t rollout) {
  EXPECT(static_cast<int>(collected.counters_by_env.size()) == num_envs);
  for (auto [env_id, counters] : collected.counters_by_env) {
    std::sort(counters.begin(), counters.end());
    bool contiguous = counters.size() % static_cast<std::size_t>(rollout) == 0;
    for (std::size_t i = 0; i < counters.size(); ++i) contiguous = contiguous && counters[i] == static_cast<std::int64_t>(i);
    EXPECT_MSG(contiguous, "env " + std::to_string(env_id) + ": steps lost or duplicated");
  }
}

void run_and_check(int workers, int envs_per_worker, int splits, int inference_threads, std::int64_t blocks_extra,
                   int blocks_to_collect) {
  const std::int64_t rollout = 5;
  const std::int64_t block_rows = envs_per_worker / splits;
  const int num_splits = workers * splits;
  TrajectoryBuffers buffers = make_buffers(num_splits + blocks_extra, block_rows, rollout);
  auto policy = std::make_shared<EchoPolicy>();
  Sampler sampler(counter_config(workers, envs_per_worker, splits, inference_threads), buffers, policy);
  sampler.start();
  Collected collected;
  // Consume in batches of one block per split, in a different order than they arrived.
  while (collected.blocks < blocks_to_collect) {
    std::vector<std::int64_t> blocks = sampler.get_trajectories(num_splits, 30.0);
    EXPECT(static_cast<int>(blocks.size()) == num_splits);
    if (blocks.empty()) break;
    std::reverse(blocks.begin(), blocks.end());
    for (std::int64_t block : blocks) check_block(buffers, block, collected);
    sampler.release(blocks);
  }
  sampler.stop();
  EXPECT(!sampler.error().has_value());
  // Every env contributes one block row per collected round: all rows of a batch are distinct envs.
  expect_exactly_once(collected, workers * envs_per_worker, rollout);
  EXPECT(policy->calls.load() > 0);
}

TEST_CASE(sampler_async_many_threads_every_step_exactly_once) { run_and_check(4, 8, 2, 2, 8, 200); }

TEST_CASE(sampler_sync_one_block_per_split_exactly_once) { run_and_check(3, 6, 3, 1, 0, 90); }

TEST_CASE(sampler_single_split_workers) { run_and_check(2, 3, 1, 3, 2, 60); }

/// Two policies: with 2 envs per split, each request holds rows of both (split by policy inside the server);
/// with 1, requests of different policies meet in one batch. With `resample_episodes` > 0 every env's policy is
/// redrawn after that many episodes (Sample Factory's async mapping): each env then acts for both policies.
void run_two_policies(int envs_per_worker, int splits, std::int64_t resample_episodes = 0) {
  const std::int64_t rollout = 5;
  const int workers = 2;
  const std::int64_t block_rows = envs_per_worker / splits;
  const int num_splits = workers * splits;
  TrajectoryBuffers buffers = make_buffers(num_splits + 4, block_rows, rollout);
  std::vector<std::shared_ptr<EchoPolicy>> policies{std::make_shared<EchoPolicy>(0), std::make_shared<EchoPolicy>(1)};
  SamplerConfig config = counter_config(workers, envs_per_worker, splits, 2);
  config.policy_resample_episodes = resample_episodes;
  Sampler sampler(config, buffers, std::vector<std::shared_ptr<PolicyRunner>>(policies.begin(), policies.end()));
  sampler.start();
  Collected collected;
  std::set<std::pair<int, int>> policies_seen;
  const int rounds = resample_episodes > 0 ? 200 : 40;
  while (collected.blocks < rounds) {
    std::vector<std::int64_t> blocks = sampler.get_trajectories(num_splits, 30.0);
    EXPECT(static_cast<int>(blocks.size()) == num_splits);
    if (blocks.empty()) break;
    for (std::int64_t block : blocks) check_block(buffers, block, collected, 2, resample_episodes == 0, &policies_seen);
    sampler.release(blocks);
  }
  if (resample_episodes > 0) {
    EXPECT_MSG(static_cast<int>(policies_seen.size()) == 2 * workers * envs_per_worker, "every env acted for both policies");
    // Episodes are still reported, each naming its env and one of the policies (which one acted at an episode's
    // end is checked in Python: tests/algo/runners/test_multi_policy.py, the training-info test).
    const auto episodes = sampler.drain_episode_stats();
    EXPECT(!episodes.empty());
    for (const auto& episode : episodes) EXPECT(policies_seen.count({episode.env_id, episode.policy_id}) == 1);
  }
  sampler.stop();
  EXPECT(!sampler.error().has_value());
  expect_exactly_once(collected, workers * envs_per_worker, rollout);
  // Each policy acted for exactly its half of the envs' steps (nothing served twice).
  EXPECT(policies[0]->rows.load() > 0 && policies[1]->rows.load() > 0);
  const std::vector<std::int64_t> served = sampler.rows_served_by_policy();
  EXPECT(served.size() == 2 && served[0] == policies[0]->rows.load() && served[1] == policies[1]->rows.load());
  EXPECT(served[0] + served[1] == sampler.rows_served());
  if (resample_episodes == 0) {
    EXPECT(std::abs(policies[0]->rows.load() - policies[1]->rows.load()) <= 2 * workers * envs_per_worker * rollout);
  }
}

TEST_CASE(sampler_two_policies_mixed_in_one_split) { run_two_policies(4, 2); }

TEST_CASE(sampler_two_policies_one_per_split) { run_two_policies(2, 2); }

TEST_CASE(sampler_two_policies_redrawn_after_episodes) { run_two_policies(4, 2, 1); }

/// A native two-player game (ConnectFour-v0 from the registry: EnvSpec::num_agents = 2): a game is one env of two
/// rows, so the fixed mapping seats policy 0 against policy 1 in every game, and each finished episode names the
/// other seat's policy as its opponent. EchoPolicy's columns (0 or 1) fill up fast, so games end often.
TEST_CASE(sampler_two_player_game_reports_each_episode_with_its_opponent) {
  const std::int64_t rollout = 8;
  const int games_per_worker = 4;
  const int splits = 2;
  const std::int64_t block_rows = games_per_worker / splits * 2;
  TrajectoryBuffers buffers = make_buffers(splits + 2, block_rows, rollout, 85);
  SamplerConfig config;
  config.native_env_name = "ConnectFour-v0";
  config.num_native_workers = 1;
  config.envs_per_native_worker = games_per_worker;
  config.worker_num_splits = splits;
  config.agents_per_env = 2;
  std::vector<std::shared_ptr<PolicyRunner>> policies{std::make_shared<EchoPolicy>(0), std::make_shared<EchoPolicy>(1)};
  Sampler sampler(config, buffers, policies);
  sampler.start();
  for (int round = 0; round < 20; ++round) {
    const std::vector<std::int64_t> blocks = sampler.get_trajectories(1, 30.0);
    EXPECT(blocks.size() == 1);
    sampler.release(blocks);
  }
  sampler.stop();
  EXPECT(!sampler.error().has_value());
  const auto episodes = sampler.drain_episode_stats();
  EXPECT(!episodes.empty());
  std::map<int, std::vector<pysf::sampler::EpisodeStat>> by_game;
  for (const auto& episode : episodes) {
    EXPECT(episode.env_id >= 0 && episode.env_id < games_per_worker);  // games are the envs
    EXPECT_MSG(episode.opponent_policy_id == 1 - episode.policy_id, "seat 0 acts for policy 0, seat 1 for policy 1");
    by_game[episode.env_id].push_back(episode);
  }
  for (const auto& [game, game_episodes] : by_game) {
    // Both seats' episodes end together, one win against one loss (or a draw).
    EXPECT(game_episodes.size() % 2 == 0);
    for (std::size_t i = 0; i + 1 < game_episodes.size(); i += 2) {
      EXPECT(game_episodes[i].policy_id != game_episodes[i + 1].policy_id);
      EXPECT(game_episodes[i].reward + game_episodes[i + 1].reward == 0.0F);
    }
  }
}

TEST_CASE(sampler_rejects_agents_per_env_other_than_the_native_envs) {
  TrajectoryBuffers buffers = make_buffers(4, 2, 3, 85);
  SamplerConfig config;
  config.native_env_name = "ConnectFour-v0";
  config.num_native_workers = 1;
  config.envs_per_native_worker = 4;
  config.worker_num_splits = 2;
  Sampler sampler(config, buffers, std::make_shared<EchoPolicy>());
  EXPECT_THROWS(sampler.start(), std::invalid_argument, "2 agents per env");
}

TEST_CASE(sampler_stop_is_bounded_while_blocked) {
  // Nobody consumes: every split fills its block and then waits for a free one.
  TrajectoryBuffers buffers = make_buffers(4, 2, 3);
  Sampler sampler(counter_config(2, 4, 2, 2), buffers, std::make_shared<EchoPolicy>());
  sampler.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto start = std::chrono::steady_clock::now();
  sampler.stop();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT(elapsed < std::chrono::seconds(2));
}

TEST_CASE(sampler_release_of_unknown_block_throws) {
  TrajectoryBuffers buffers = make_buffers(4, 2, 3);
  Sampler sampler(counter_config(2, 4, 2, 1), buffers, std::make_shared<EchoPolicy>());
  sampler.start();
  const auto blocks = sampler.get_trajectories(1, 10.0);
  EXPECT(blocks.size() == 1);
  sampler.release(blocks);
  EXPECT_THROWS(sampler.release(blocks), std::invalid_argument, "released twice");
  sampler.stop();
}

/// A policy that fails: the sampler records the error, stops, and get_trajectories rethrows it.
class FailingPolicy final : public PolicyRunner {
 public:
  PolicyOutput forward(const TensorMap&, const at::Tensor&, bool) override {
    throw std::runtime_error("policy exploded");
  }
};

TEST_CASE(sampler_policy_error_stops_everything) {
  TrajectoryBuffers buffers = make_buffers(8, 2, 3);
  Sampler sampler(counter_config(2, 4, 2, 2), buffers, std::make_shared<FailingPolicy>());
  sampler.start();
  EXPECT_THROWS((void)sampler.get_trajectories(1, 10.0), std::runtime_error, "policy exploded");
  sampler.stop();
}

TEST_CASE(sampler_rejects_too_few_blocks) {
  TrajectoryBuffers buffers = make_buffers(3, 2, 3);
  Sampler sampler(counter_config(2, 4, 2, 1), buffers, std::make_shared<EchoPolicy>());
  EXPECT_THROWS(sampler.start(), std::invalid_argument, "every split needs a block");
}

/// A remote worker (a thread standing in for an env worker process) whose first two steps are slow but
/// show progress, and whose third never returns: the stall check must report it, and only it.
TEST_CASE(sampler_reports_a_remote_worker_that_makes_no_progress) {
  using pysf::sampler::CommandKind;
  using pysf::sampler::MailboxLayout;
  using pysf::sampler::MailboxWords;
  using pysf::sampler::ReportKind;
  using pysf::sampler::UniqueFd;
  using pysf::sampler::WorkerChannels;
  using pysf::sampler::WorkerMailboxEnd;
  const std::int64_t rows = 2;
  TrajectoryBuffers buffers = make_buffers(2, rows, 3);
  SamplerConfig config;
  config.worker_num_splits = 1;
  config.inference.num_threads = 1;
  config.stall_limits.stuck_after_seconds = 0.3;
  config.stall_limits.check_every_seconds = 0.05;
  Sampler sampler(config, buffers, std::make_shared<EchoPolicy>());

  const MailboxLayout layout(1, rows);
  const at::Tensor words = at::zeros({layout.words()}, at::kLong);
  const int wake_worker = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const int reports_posted = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int lifeline[2] = {-1, -1};
  EXPECT(wake_worker >= 0 && reports_posted >= 0 && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, lifeline) == 0);
  sampler.add_remote_worker(WorkerChannels{words, UniqueFd(::dup(wake_worker)), UniqueFd(::dup(reports_posted)),
                                           UniqueFd(lifeline[0])},
                            1, "worker 0");
  WorkerMailboxEnd worker(MailboxWords(words, layout), UniqueFd(wake_worker), UniqueFd(reports_posted),
                          UniqueFd(lifeline[1]));
  std::atomic<bool> unstick{false};
  std::atomic<int> steps_reported{0};
  std::thread worker_thread([&] {
    worker.attach();
    for (;;) {
      const auto command = worker.wait();
      if (command.kind == CommandKind::kStop) return;
      if (command.kind == CommandKind::kAssign) {
        worker.post_report(ReportKind::kReady, 0, 0);
        continue;
      }
      if (steps_reported.load() < 2) {  // slower than the limit, but busy: not stuck
        for (int i = 0; i < 10; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          (void)worker.stop_requested();
        }
        worker.post_report(ReportKind::kStepped, 0, 0);
        steps_reported.fetch_add(1);
        continue;
      }
      while (!unstick.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // hangs
    }
  });
  sampler.start();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROWS((void)sampler.get_trajectories(1, 30.0), std::runtime_error, "worker 0 made no progress for");
  EXPECT(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  EXPECT(steps_reported.load() == 2);
  EXPECT(sampler.stalled_remote_workers() == std::vector<int>{0});
  unstick.store(true);
  sampler.stop();
  worker_thread.join();
}

}  // namespace

TEST_CASE(block_pool_try_acquire_never_waits_and_prefers_the_home_block) {
  pysf::buffers::BlockPool pool(3, 2);  // home blocks 0 and 1, one shared extra (2)
  EXPECT(!pool.try_acquire(0).has_value());  // nothing free before fill()
  pool.fill();
  EXPECT(pool.try_acquire(1) == std::optional<std::int64_t>(1));
  EXPECT(pool.try_acquire(1) == std::optional<std::int64_t>(2));  // home taken: the extra
  EXPECT(!pool.try_acquire(1).has_value());  // split 1 cannot take split 0's home block
  EXPECT(pool.try_acquire(0) == std::optional<std::int64_t>(0));
  pool.release(2);
  EXPECT(pool.try_acquire(0) == std::optional<std::int64_t>(2));
  pool.release(1);
  pool.close();
  EXPECT(!pool.try_acquire(1).has_value());  // closed: nothing, even though block 1 is free
}
