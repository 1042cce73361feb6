#include "sampler/remote_worker.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <utility>

#include <c10/util/Exception.h>

#include "sampler/worker_protocol.h"

namespace pysf::sampler {

RemoteWorker::RemoteWorker(std::string description, int request_fd, int reply_fd,
                           std::vector<std::unique_ptr<RolloutSplit>> splits, inference::InferenceServer& server,
                           EpisodeStatsSink& episode_stats, ErrorHandler on_error)
    : description_(std::move(description)),
      request_fd_(request_fd),
      reply_fd_(reply_fd),
      wake_fd_(::eventfd(0, EFD_CLOEXEC)),
      splits_(std::move(splits)),
      server_(server),
      episode_stats_(episode_stats),
      on_error_(std::move(on_error)) {
  if (wake_fd_ < 0) throw std::runtime_error(std::string("eventfd failed: ") + std::strerror(errno));
}

RemoteWorker::~RemoteWorker() {
  stop();
  ::close(request_fd_);
  ::close(reply_fd_);
  ::close(wake_fd_);
}

void RemoteWorker::start() { thread_ = std::thread([this] { thread_main(); }); }

void RemoteWorker::request_stop() {
  if (!stopping_.exchange(true)) {
    send(protocol::kStop, -1, 0, 0);
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = ::write(wake_fd_, &one, sizeof(one));
  }
}

void RemoteWorker::stop() {
  request_stop();
  if (thread_.joinable()) thread_.join();
}

void RemoteWorker::on_actions_ready(int local_index, const inference::InferenceRequest& request) {
  send(protocol::kAct, local_index, request.block, request.step);
}

void RemoteWorker::send(std::int32_t kind, int local_split, std::int64_t block, std::int64_t step) {
  const protocol::SamplerMessage message{kind, local_split, block, step};
  for (;;) {
    const ssize_t written = ::write(reply_fd_, &message, sizeof(message));
    if (written == static_cast<ssize_t>(sizeof(message))) return;
    if (written < 0 && errno == EINTR) continue;
    // EPIPE: the process is gone; the proxy thread sees the closed request pipe and reports it.
    return;
  }
}

bool RemoteWorker::read_exact(void* data, std::size_t size) {
  auto* bytes = static_cast<char*>(data);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t got = ::read(request_fd_, bytes + done, size - done);
    if (got > 0) {
      done += static_cast<std::size_t>(got);
    } else if (got < 0 && errno == EINTR) {
      continue;
    } else {
      return false;  // EOF or error: the process closed its end (exited or crashed)
    }
  }
  return true;
}

bool RemoteWorker::read_episodes(const RolloutSplit& split, std::int32_t payload_bytes) {
  if (payload_bytes <= 0) return true;
  if (payload_bytes % static_cast<std::int32_t>(sizeof(protocol::EpisodeRecord)) != 0) {
    on_error_(description_ + ": protocol error (episode payload of " + std::to_string(payload_bytes) + " bytes)");
    return false;
  }
  std::vector<protocol::EpisodeRecord> records(static_cast<std::size_t>(payload_bytes) / sizeof(protocol::EpisodeRecord));
  if (!read_exact(records.data(), static_cast<std::size_t>(payload_bytes))) return false;
  for (const auto& record : records) {
    const int env_id = static_cast<int>(split.split_id() * split.rows() + record.env_index);
    episode_stats_.push(EpisodeStat{env_id, 0, record.reward, record.length});
  }
  return true;
}

bool RemoteWorker::handle_message() {
  protocol::WorkerMessage message{};
  if (!read_exact(&message, sizeof(message))) {
    if (!stopping_.load()) on_error_(description_ + " exited unexpectedly (its pipe to the sampler closed)");
    return false;
  }
  if (message.kind == protocol::kError) {
    std::string text(static_cast<std::size_t>(std::max(0, message.payload_bytes)), '\0');
    if (!text.empty() && !read_exact(text.data(), text.size())) text = "(message lost)";
    on_error_(description_ + ": " + text);
    return false;
  }
  if (message.split < 0 || message.split >= static_cast<int>(splits_.size())) {
    on_error_(description_ + ": protocol error (split " + std::to_string(message.split) + ")");
    return false;
  }
  RolloutSplit& split = *splits_[static_cast<std::size_t>(message.split)];
  if (message.kind == protocol::kStepped) {
    if (!read_episodes(split, message.payload_bytes)) {
      if (!stopping_.load()) on_error_(description_ + " exited unexpectedly (its pipe to the sampler closed)");
      return false;
    }
    if (!split.finish_step()) return false;
    if (split.needs_block()) {
      // Blocking here only delays reading this process's next message; the process keeps stepping its
      // other splits meanwhile (their messages wait in the pipe).
      // The process learns the new block from the next kAct message (its step-0 data was copied here).
      if (!split.acquire_block()) return false;
    }
  } else if (message.kind != protocol::kReady) {
    on_error_(description_ + ": protocol error (message kind " + std::to_string(message.kind) + ")");
    return false;
  }
  return server_.submit(split.request());
}

void RemoteWorker::thread_main() {
  try {
    for (std::size_t i = 0; i < splits_.size(); ++i) {
      if (!splits_[i]->acquire_block()) return;
      send(protocol::kAssign, static_cast<int>(i), splits_[i]->block(), 0);
    }
    pollfd fds[2] = {{request_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    while (!stopping_.load()) {
      const int ready = ::poll(fds, 2, -1);
      if (ready < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(std::string("poll failed: ") + std::strerror(errno));
      }
      if (fds[1].revents != 0) return;
      if (fds[0].revents != 0 && !handle_message()) return;
    }
  } catch (const c10::Error& error) {
    on_error_(description_ + ": " + error.what_without_backtrace());
  } catch (const std::exception& error) {
    on_error_(description_ + ": " + error.what());
  }
}

}  // namespace pysf::sampler
