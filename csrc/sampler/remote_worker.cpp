#include "sampler/remote_worker.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <utility>

#include <c10/util/Exception.h>

namespace pysf::sampler {

namespace {

MailboxLayout layout_of(const std::vector<std::unique_ptr<RolloutSplit>>& splits) {
  if (splits.empty()) throw std::invalid_argument("a worker needs at least one split");
  return MailboxLayout(static_cast<int>(splits.size()), splits.front()->rows());
}

}  // namespace

RemoteWorker::RemoteWorker(std::string description, WorkerChannels channels,
                           std::vector<std::unique_ptr<RolloutSplit>> splits, InferenceServer& server,
                           EpisodeStatsSink& episode_stats, ErrorHandler on_error, StallLimits stall_limits)
    : description_(std::move(description)),
      splits_(std::move(splits)),
      mailbox_(std::move(channels), layout_of(splits_)),
      server_(server),
      episode_stats_(episode_stats),
      on_error_(std::move(on_error)),
      stall_limits_(stall_limits) {}

RemoteWorker::~RemoteWorker() { stop(); }

void RemoteWorker::start() {
  lifeline_thread_ = std::thread([this] { lifeline_main(); });
  proxy_thread_ = std::thread([this] { proxy_main(); });
}

void RemoteWorker::request_stop() {
  if (!stopping_.exchange(true)) {
    mailbox_.post_stop();
    mailbox_.wake_proxy();
    mailbox_.hang_up_lifeline();  // wakes the lifeline thread; the worker would take it as STOP too
  }
}

void RemoteWorker::stop() {
  request_stop();
  if (proxy_thread_.joinable()) proxy_thread_.join();
  if (lifeline_thread_.joinable()) lifeline_thread_.join();
}

void RemoteWorker::on_actions_ready(int local_index, const InferenceRequest& request) {
  mailbox_.post_command(CommandKind::kAct, local_index, request.block, request.step);
}

bool RemoteWorker::handle_report(int local_index, const WorkerReport& report) {
  RolloutSplit& split = *splits_[static_cast<std::size_t>(local_index)];
  if (report.kind == ReportKind::kStepped) {
    for (const auto& episode : report.episodes) {
      episode_stats_.push(episode_of(split, episode.env_index, static_cast<float>(episode.raw_return),
                                     static_cast<std::int32_t>(episode.length)));
    }
    if (!split.finish_step()) return false;
    if (split.needs_block()) return true;  // continues in acquire_blocks()
  }
  return server_.submit(split.request());
}

bool RemoteWorker::acquire_blocks() {
  // This thread may wait for a free block only when every split waits for one. While another split still
  // fills its block, waiting would leave that split's reports unhandled, and with one block per split
  // (synchronous sampling) the consumer frees no block before it has that one too: a deadlock. Until then
  // a waiting split retries whenever this thread wakes up for another split's report.
  bool every_split_waits = true;
  for (const auto& split : splits_) every_split_waits = every_split_waits && split->needs_block();
  for (auto& split : splits_) {
    if (!split->needs_block()) continue;
    if (every_split_waits) {
      if (!split->acquire_block()) return false;
      every_split_waits = false;
    } else if (!split->try_acquire_block()) {
      continue;
    }
    // The process learns the new block from the next kAct (step 0 was copied into it here).
    if (!server_.submit(split->request())) return false;
  }
  return true;
}

bool RemoteWorker::handle_reports() {
  for (int i = 0; i < static_cast<int>(splits_.size()); ++i) {
    if (stopping_.load()) return false;
    std::optional<WorkerReport> report;
    try {
      report = mailbox_.take_report(i);
    } catch (const std::runtime_error& error) {
      on_error_(description_ + ": " + error.what());
      return false;
    }
    if (report && !handle_report(i, *report)) return false;
  }
  return acquire_blocks() && !stopping_.load();
}

bool RemoteWorker::watch_until_lifeline_readable() {
  if (stall_limits_.stuck_after_seconds <= 0) {
    mailbox_.wait_for_lifeline();
    return true;
  }
  using Clock = std::chrono::steady_clock;
  WorkerActivity seen = mailbox_.activity();
  Clock::time_point last_progress = Clock::now();
  const double check_every = std::max(0.01, std::min(stall_limits_.check_every_seconds, stall_limits_.stuck_after_seconds));
  while (!mailbox_.wait_for_lifeline(check_every)) {
    if (stopping_.load()) return true;  // our own hang-up comes next
    const WorkerActivity now = mailbox_.activity();
    const Clock::time_point time = Clock::now();
    if (now.progress != seen.progress || !now.owes_report) {  // busy, or idle waiting for a command: not stuck
      seen = now;
      last_progress = time;
      continue;
    }
    const double silent = std::chrono::duration<double>(time - last_progress).count();
    const double limit = stall_limits_.stuck_after_seconds * (now.attached ? 1.0 : stall_limits_.starting_factor);
    if (silent < limit) continue;
    stalled_.store(true);
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%.0f", silent);
    on_error_(description_ + (now.attached ? " made no progress for " : " did not finish starting within ") + seconds +
              " s: it owes the sampler a report, so an env call (step, reset or creation) did not return, or the "
              "process is frozen (limit: --heartbeat_reporting_interval=" +
              std::to_string(static_cast<long long>(stall_limits_.stuck_after_seconds)) + " s" +
              (now.attached ? "" : ", x" + std::to_string(static_cast<long long>(stall_limits_.starting_factor)) +
                                       " while starting") +
              ")");
    return false;
  }
  return true;
}

void RemoteWorker::lifeline_main() {
  try {
    if (!watch_until_lifeline_readable()) return;
    const std::optional<std::string> error_text = mailbox_.read_lifeline();
    if (stopping_.load()) return;  // our own hang-up, or a normal exit after STOP
    if (error_text) {
      on_error_(description_ + ": " + *error_text);
    } else {
      on_error_(description_ + " exited unexpectedly (its lifeline to the sampler closed)");
    }
  } catch (const std::exception& error) {
    on_error_(description_ + ": " + error.what());
  }
}

void RemoteWorker::proxy_main() {
  try {
    for (std::size_t i = 0; i < splits_.size(); ++i) {
      if (!splits_[i]->acquire_block()) return;
      mailbox_.post_command(CommandKind::kAssign, static_cast<int>(i), splits_[i]->block(), 0);
    }
    // Scan, then sleep until the worker signals (the eventcount in worker_mailbox.h loses no report).
    while (handle_reports()) mailbox_.wait_for_reports();
  } catch (const c10::Error& error) {
    on_error_(description_ + ": " + error.what_without_backtrace());
  } catch (const std::exception& error) {
    on_error_(description_ + ": " + error.what());
  }
}

}  // namespace pysf::sampler
