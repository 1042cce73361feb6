// Sampler: the sampling side of APPO — env runners, the inference server and the trajectory queues.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "buffers/block_pool.h"
#include "buffers/bounded_queue.h"
#include "buffers/trajectory_buffers.h"
#include "envs/vector_env.h"
#include "sampler/inference_server.h"
#include "inference/policy_runner.h"
#include "sampler/episode_stats.h"
#include "sampler/remote_worker.h"
#include "sampler/rollout_split.h"
#include "sampler/sampler_mailbox_end.h"
#include "sampler/split_assignment.h"

namespace pysf::sampler {

class NativeRunner;
class RemoteWorker;

/// Makes the VectorEnv of one split (assignment.num_rows() slots: num_envs() envs of agents_per_env agents
/// each, EnvSpec::num_agents); the Sampler then seeds it with the assignment's env_seeds.
using VectorEnvFactory = std::function<std::unique_ptr<envs::VectorEnv>(const SplitAssignment&)>;

/// The Sampler's settings. The defaults here (and in the structs it holds) are also the defaults of the
/// command-line flags that set them (pysf/cfg/cfg.py reads them via pysf._C.sampler_config_defaults()).
struct SamplerConfig {
  // Native path: C++ threads stepping pysf's own envs (empty name: no native workers).
  std::string native_env_name;
  // Optional: builds the native envs instead of the registry (e.g. instrumented envs in C++ tests).
  VectorEnvFactory make_env;
  int num_native_workers = 0;        // --num_workers (threads)
  int envs_per_native_worker = 0;    // --num_envs_per_worker
  // Both paths
  int worker_num_splits = 2;         // --worker_num_splits (double buffering)
  // Trajectory rows per env: a multi-agent env's num_agents (a native env's EnvSpec::num_agents).
  int agents_per_env = 1;
  std::uint64_t seed = 0;            // env seeds derive from it and the global env id (split_assignment.h)
  // --decorrelate_envs_on_one_worker: random warm-up steps after the first reset (split_assignment.h)
  bool decorrelate_envs_on_one_worker = false;
  // --pbt_mix_policies_in_one_env: with several policies, the agents of one env may act for different ones
  // (split_assignment.h has the mapping)
  bool mix_policies_in_one_env = true;
  // With several policies: redraw an env's policies at random after this many episodes per agent (Sample
  // Factory's async mode); 0 keeps the fixed mapping (its sync mode). split_assignment.h has the rule.
  std::int64_t policy_resample_episodes = 0;
  RewardShaping reward_shaping;
  InferenceServerConfig inference;  // num_splits is filled in by the Sampler
  // Python path: when a worker process counts as stuck (remote_worker.h)
  StallLimits stall_limits;
};

/// Owns everything that produces trajectories: native runner threads, proxies of Python env worker
/// processes, the inference threads, the free-block pool and the completed-block queue.
///
/// Life cycle: construct, `add_remote_worker` for each Python env worker process, `start()`, then
/// repeatedly `get_trajectories` (blocks) and `release` the blocks once their data was consumed, and
/// finally `stop()` (idempotent, also run by the destructor), which joins every thread and returns
/// within a bounded time even when threads are blocked on queues or in poll().
///
/// Failures anywhere (an env error, a dead worker process, a policy error) are recorded (the first one
/// wins), stop sampling, and are rethrown as std::runtime_error by `get_trajectories` / `check`.
class Sampler {
 public:
  /// `policies[p]` acts for the agents mapped to policy p (split_assignment.h): one or more.
  Sampler(SamplerConfig config, buffers::TrajectoryBuffers buffers,
          std::vector<std::shared_ptr<inference::PolicyRunner>> policies);
  Sampler(SamplerConfig config, buffers::TrajectoryBuffers buffers, std::shared_ptr<inference::PolicyRunner> policy)
      : Sampler(std::move(config), std::move(buffers), std::vector<std::shared_ptr<inference::PolicyRunner>>{std::move(policy)}) {}
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  /// Registers a Python env worker process before start(): it will step `num_splits` splits of
  /// `block_rows` envs; the sampler talks to it through `channels` (worker_mailbox.h), which it now owns.
  /// Throws std::invalid_argument if the mailbox does not fit. Returns the assignments of its splits: the
  /// same as next_remote_assignments(num_splits) just before.
  std::vector<SplitAssignment> add_remote_worker(WorkerChannels channels, int num_splits,
                                                 const std::string& description);
  /// What the splits of the next remote worker registered with `num_splits` splits will be assigned (the
  /// worker process needs them before it starts, hence before add_remote_worker).
  [[nodiscard]] std::vector<SplitAssignment> next_remote_assignments(int num_splits) const;

  void start();
  void stop();

  /// Waits up to `timeout_seconds` for `num_blocks` completed blocks; returns what it got (fewer on
  /// timeout). Throws std::runtime_error if sampling failed.
  std::vector<std::int64_t> get_trajectories(int num_blocks, double timeout_seconds);

  /// Returns consumed blocks to the free pool.
  void release(const std::vector<std::int64_t>& blocks);

  /// Finished-episode statistics since the last call.
  std::vector<EpisodeStat> drain_episode_stats() { return episode_stats_.drain(); }

  /// Records an external failure (e.g. the Python monitor saw a worker die) and stops sampling.
  void fail(const std::string& message);
  /// Throws std::runtime_error with the recorded failure, if any.
  void check() const;
  [[nodiscard]] std::optional<std::string> error() const;

  [[nodiscard]] std::int64_t rows_served() const;
  /// Env rows served by each policy's inference so far (policy p at index p).
  [[nodiscard]] std::vector<std::int64_t> rows_served_by_policy() const;
  /// Indices (in `add_remote_worker` order) of the worker processes the stall check found stuck.
  [[nodiscard]] std::vector<int> stalled_remote_workers() const;
  /// Splits of native workers plus those of registered remote workers.
  [[nodiscard]] int num_splits() const;
  [[nodiscard]] const buffers::TrajectoryBuffers& buffers() const { return buffers_; }

 private:
  struct SplitOwner {
    NativeRunner* native = nullptr;
    RemoteWorker* remote = nullptr;
    int local_index = 0;
  };

  struct PendingRemoteWorker {
    WorkerChannels channels;
    std::vector<SplitAssignment> assignments;
    std::string description;
  };

  void on_actions_ready(const InferenceRequest& request);
  void request_stop_all();
  [[nodiscard]] AssignmentRules assignment_rules() const;
  /// Assignments of the `count` splits of one worker, numbered from `first_split`.
  [[nodiscard]] std::vector<SplitAssignment> worker_assignments(int first_split, int count) const;
  std::vector<std::unique_ptr<RolloutSplit>> make_splits(std::vector<SplitAssignment> assignments);

  SamplerConfig config_;
  buffers::TrajectoryBuffers buffers_;
  std::vector<std::shared_ptr<inference::PolicyRunner>> policies_;
  std::unique_ptr<buffers::BlockPool> free_blocks_;  // created in start(), when the splits are known
  buffers::BoundedQueue<std::int64_t> completed_blocks_;
  EpisodeStatsSink episode_stats_;
  std::unique_ptr<InferenceServer> server_;
  std::vector<std::unique_ptr<NativeRunner>> native_runners_;
  std::vector<std::unique_ptr<RemoteWorker>> remote_workers_;
  std::vector<SplitOwner> split_owners_;
  std::vector<PendingRemoteWorker> pending_remote_;
  int num_remote_splits_ = 0;
  // Blocks handed to the consumer and not yet released (to catch double or unknown releases).
  std::mutex outstanding_mutex_;
  std::vector<char> outstanding_;
  mutable std::mutex error_mutex_;
  std::optional<std::string> error_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};
};

}  // namespace pysf::sampler
