// RemoteWorker: the sampler's side of one Python env worker process.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "inference/inference_server.h"
#include "sampler/episode_stats.h"
#include "sampler/rollout_split.h"

namespace pysf::sampler {

/// Drives the splits of one Python env worker process (gymnasium envs, Sample Factory's 4-argument
/// make_env_func) through two pipes: the process reports "stepped split s" and this proxy finalises the
/// step (RolloutSplit::finish_step, block rotation included) and requests inference; inference answers
/// the process directly ("act on block b, step t"). Data never crosses the pipes: the process reads
/// actions from and writes observations/rewards into the shared trajectory buffers.
///
/// One thread per proxy blocks in poll() on the request pipe and an eventfd used to stop it. A closed
/// pipe (the process died) or an error message from the process is reported through `on_error`.
/// Owns both file descriptors and closes them.
class RemoteWorker {
 public:
  using ErrorHandler = std::function<void(const std::string&)>;

  RemoteWorker(std::string description, int request_fd, int reply_fd, std::vector<std::unique_ptr<RolloutSplit>> splits,
               inference::InferenceServer& server, EpisodeStatsSink& episode_stats, ErrorHandler on_error);
  ~RemoteWorker();
  RemoteWorker(const RemoteWorker&) = delete;
  RemoteWorker& operator=(const RemoteWorker&) = delete;

  void start();
  /// Tells the process to stop and wakes the proxy thread without waiting (safe from any thread).
  void request_stop();
  /// request_stop() and join the proxy thread.
  void stop();

  /// Inference wrote the actions of `request` (local split `local_index`): tell the process.
  void on_actions_ready(int local_index, const inference::InferenceRequest& request);

 private:
  void thread_main();
  bool handle_message();
  void send(std::int32_t kind, int local_split, std::int64_t block, std::int64_t step);
  bool read_exact(void* data, std::size_t size);
  bool read_episodes(const RolloutSplit& split, std::int32_t payload_bytes);

  const std::string description_;
  const int request_fd_;
  const int reply_fd_;
  const int wake_fd_;
  std::vector<std::unique_ptr<RolloutSplit>> splits_;
  inference::InferenceServer& server_;
  EpisodeStatsSink& episode_stats_;
  ErrorHandler on_error_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
};

}  // namespace pysf::sampler
