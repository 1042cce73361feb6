// EpisodeStatsSink: finished-episode statistics collected from env runners, drained by Python.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "sampler/rollout_split.h"

namespace pysf::sampler {

/// One finished episode: raw (unscaled) return and length in env steps.
struct EpisodeStat {
  int env_id = 0;      // global env index
  int policy_id = 0;
  float reward = 0.0F;
  std::int32_t length = 0;
};

/// The episode that row `row` (an agent) of `split` just finished, at the split's current step (before
/// finish_step): its env id from the assignment, its policy the one that acted for the row at that step.
[[nodiscard]] inline EpisodeStat episode_of(const RolloutSplit& split, std::int64_t row, float reward,
                                            std::int32_t length) {
  return EpisodeStat{static_cast<int>(split.assignment().env_of_row(row)), split.policy_of_row(row), reward, length};
}

/// Thread-safe append/drain buffer. Bounded: when nobody drains, the oldest entries are discarded
/// (and counted) instead of growing without limit.
class EpisodeStatsSink {
 public:
  explicit EpisodeStatsSink(std::size_t capacity = 1 << 16) : capacity_(capacity) {}

  void push(const EpisodeStat& stat) {
    const std::lock_guard lock(mutex_);
    if (stats_.size() >= capacity_) {
      stats_.erase(stats_.begin(), stats_.begin() + static_cast<std::ptrdiff_t>(capacity_ / 2));
      dropped_ += capacity_ / 2;
    }
    stats_.push_back(stat);
    ++total_;
  }

  /// Everything collected since the last drain.
  std::vector<EpisodeStat> drain() {
    const std::lock_guard lock(mutex_);
    return std::exchange(stats_, {});
  }

  [[nodiscard]] std::size_t total() const {
    const std::lock_guard lock(mutex_);
    return total_;
  }
  [[nodiscard]] std::size_t dropped() const {
    const std::lock_guard lock(mutex_);
    return dropped_;
  }

 private:
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::vector<EpisodeStat> stats_;
  std::size_t total_ = 0;
  std::size_t dropped_ = 0;
};

}  // namespace pysf::sampler
