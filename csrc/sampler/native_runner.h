// NativeRunner: a C++ worker thread stepping blocks of native envs, double-buffered across splits.
#pragma once

#include <ATen/core/Tensor.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "envs/vector_env.h"
#include "sampler/inference_server.h"
#include "sampler/episode_stats.h"
#include "sampler/rollout_split.h"

namespace pysf::sampler {

/// Sample Factory's rollout worker, without Python: owns `splits.size()` splits, each a VectorEnv of
/// `block_rows` slots (one per row: the agents of the split's envs, EnvSpec::num_agents each). While inference runs for one split, the thread steps the other (Sample Factory's
/// `worker_num_splits` double buffering). Each step writes straight into the trajectory buffers;
/// finished episodes go to the stats sink. Each split's envs get their seeds and their Sample Factory
/// decorrelation warm-up (--decorrelate_envs_on_one_worker: random steps right after the first reset,
/// VectorEnv::random_steps, no env frames, no episodes reported) from the split's assignment
/// (split_assignment.h). The thread waits on a condition variable for actions
/// (no spinning) and exits when stopped or when a queue closes; errors go to `on_error`.
class NativeRunner {
 public:
  using ErrorHandler = std::function<void(const std::string&)>;

  NativeRunner(int worker_index, std::vector<std::unique_ptr<RolloutSplit>> splits,
               std::vector<std::unique_ptr<envs::VectorEnv>> envs, const buffers::TrajectoryBuffers& buffers,
               InferenceServer& server, EpisodeStatsSink& episode_stats, ErrorHandler on_error);
  ~NativeRunner();
  NativeRunner(const NativeRunner&) = delete;
  NativeRunner& operator=(const NativeRunner&) = delete;

  void start();
  /// Asks the thread to finish without waiting for it (safe from any thread, including callbacks).
  void request_stop();
  /// request_stop() and join (queues must be closed too, for a thread waiting on a free block).
  void stop();

  /// Inference wrote actions for local split `local_index` (called from an inference thread).
  void on_actions_ready(int local_index);

 private:
  void thread_main();
  /// The warm-up of split `local_index`'s envs, then their observations at step 0 into `obs`. Returns
  /// false if stopped meanwhile (checked between envs).
  bool decorrelate(std::size_t local_index, const at::Tensor& obs);
  [[nodiscard]] bool has_warm_up(std::size_t local_index) const;
  /// One seed per slot: every agent of an env gets the env's seed (as a multi-agent gymnasium env takes one
  /// seed at reset; a board game draws from its first seat's stream).
  [[nodiscard]] static std::vector<std::uint64_t> slot_seeds(const SplitAssignment& assignment);
  bool stop_requested();
  bool wait_for_actions(int local_index);
  void step_split(int local_index);

  const int worker_index_;
  std::vector<std::unique_ptr<RolloutSplit>> splits_;
  std::vector<std::unique_ptr<envs::VectorEnv>> envs_;
  const buffers::TrajectoryBuffers& buffers_;
  InferenceServer& server_;
  EpisodeStatsSink& episode_stats_;
  ErrorHandler on_error_;
  // Per split: inference finished writing its actions.
  std::mutex mutex_;
  std::condition_variable actions_ready_;
  std::vector<char> ready_;
  bool stopping_ = false;
  std::thread thread_;
  // Scratch for the finished episodes' return/length, one entry per env of a split.
  at::Tensor episode_return_;
  at::Tensor episode_length_;
};

}  // namespace pysf::sampler
