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
  /// In an env of exactly two agents (a two-player game): the policy of the other agent; -1 otherwise.
  int opponent_policy_id = -1;
  float reward = 0.0F;
  std::int32_t length = 0;
};

/// The agent that plays against block row `row` in its env, when the env has exactly two agents; -1 otherwise.
[[nodiscard]] inline std::int64_t opponent_row(const SplitAssignment& assignment, std::int64_t row) {
  return assignment.agents_per_env == 2 ? row ^ 1 : -1;  // the agents of env k are rows 2k and 2k + 1
}

/// The episode that row `row` (an agent) of `split` just finished, at the split's current step (before
/// finish_step): its env id from the assignment, its policy (and the opponent's, in a two-agent env) the
/// ones that acted at that step.
[[nodiscard]] inline EpisodeStat episode_of(const RolloutSplit& split, std::int64_t row, float reward,
                                            std::int32_t length) {
  const std::int64_t opponent = opponent_row(split.assignment(), row);
  return EpisodeStat{.env_id = static_cast<int>(split.assignment().env_of_row(row)),
                     .policy_id = split.policy_of_row(row),
                     .opponent_policy_id = opponent < 0 ? -1 : split.policy_of_row(opponent),
                     .reward = reward,
                     .length = length};
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
