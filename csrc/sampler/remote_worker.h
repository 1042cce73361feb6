// RemoteWorker: the sampler's side of one Python env worker process.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sampler/inference_server.h"
#include "sampler/episode_stats.h"
#include "sampler/rollout_split.h"
#include "sampler/sampler_mailbox_end.h"

namespace pysf::sampler {

/// Drives the splits of one Python env worker process (gymnasium envs, Sample Factory's 4-argument
/// make_env_func) through a shared-memory mailbox: the process reports "stepped split s" and this
/// proxy finalises the step (RolloutSplit::finish_step, block rotation included) and requests
/// inference; inference commands the process directly ("act on block b, step t"). Data never goes
/// through the kernel: the process reads actions from and writes observations/rewards into the shared
/// trajectory buffers, and messages are a few words in the mailbox, announced by eventfd wake-ups.
///
/// Two threads per proxy, each sleeping in poll() while there is nothing to do: the proxy thread
/// handles reports (and waits for a free trajectory block when all its splits need one); the lifeline
/// thread watches the process, so that a death is reported within milliseconds even then. A hung-up
/// lifeline (the process died), an error text from the process, or a stall (StallLimits) is reported
/// through `on_error`.
/// When a worker process counts as stuck (worker_mailbox.h, "stalls"): it owes a report and its progress word
/// has not moved for `stuck_after_seconds` (Sample Factory's --heartbeat_reporting_interval), checked every
/// `check_every_seconds` (--heartbeat_interval). A worker still starting (a fresh interpreter importing torch)
/// gets `starting_factor` times longer, as Sample Factory allows components three intervals to start.
struct StallLimits {
  double stuck_after_seconds = 0.0;  // <= 0: no stall check
  double check_every_seconds = 20.0;
  double starting_factor = 3.0;
};

class RemoteWorker {
 public:
  using ErrorHandler = std::function<void(const std::string&)>;

  /// Throws std::invalid_argument if the mailbox does not fit `splits` (count and block rows).
  RemoteWorker(std::string description, WorkerChannels channels, std::vector<std::unique_ptr<RolloutSplit>> splits,
               InferenceServer& server, EpisodeStatsSink& episode_stats, ErrorHandler on_error,
               StallLimits stall_limits = {});
  ~RemoteWorker();
  RemoteWorker(const RemoteWorker&) = delete;
  RemoteWorker& operator=(const RemoteWorker&) = delete;

  void start();
  /// Tells the process to stop and wakes both threads without waiting (safe from any thread).
  void request_stop();
  /// request_stop() and join both threads.
  void stop();

  /// Inference wrote the actions of `request` (local split `local_index`): tell the process.
  void on_actions_ready(int local_index, const InferenceRequest& request);

  /// The stall check found the process stuck (it was reported through `on_error`; the process is still
  /// there, for its owner to inspect and kill).
  [[nodiscard]] bool stalled() const { return stalled_.load(); }

 private:
  void proxy_main();
  /// Handles every report that arrived; false when the proxy must exit (stopping or failed).
  bool handle_reports();
  bool handle_report(int local_index, const WorkerReport& report);
  /// Gives splits that completed their block a new one (waits only when every split needs one).
  bool acquire_blocks();
  /// Waits until the process sends its error text or exits, and reports that (unless stopping); meanwhile
  /// checks it for stalls.
  void lifeline_main();
  /// Waits for the lifeline, checking for stalls every `stall_limits_.check_every_seconds`; false if the
  /// process was found stuck (reported).
  bool watch_until_lifeline_readable();

  const std::string description_;
  std::vector<std::unique_ptr<RolloutSplit>> splits_;
  SamplerMailboxEnd mailbox_;
  InferenceServer& server_;
  EpisodeStatsSink& episode_stats_;
  ErrorHandler on_error_;
  StallLimits stall_limits_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stalled_{false};
  std::thread proxy_thread_;
  std::thread lifeline_thread_;
};

}  // namespace pysf::sampler
