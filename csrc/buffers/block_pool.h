// BlockPool: the free trajectory blocks, with one "home" block per split so no split can starve another.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace pysf::buffers {

/// Free trajectory blocks. Block i < num_splits is split i's home block; the others are shared extras.
///
/// `acquire(split)` returns the split's home block when it is free, else a shared extra, and waits
/// (condition variable, no spinning) while neither is available. Without home blocks, a fast split could
/// take a second block while a split of another runner still needs its first; with exactly one block per
/// split (synchronous sampling) that split would never complete its block, and the runner thread waiting
/// for it would hold back its other splits too, so the learner would wait forever. With home blocks,
/// every split can always continue in its own block once the consumer released it.
///
/// `close()` wakes every waiter; `acquire` then returns std::nullopt. Thread-safe; not copyable.
class BlockPool {
 public:
  /// Throws std::invalid_argument unless 1 <= num_splits <= num_blocks.
  BlockPool(std::int64_t num_blocks, int num_splits)
      : home_free_(checked_num_splits(num_blocks, num_splits), 0), num_blocks_(num_blocks) {}
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  /// Makes every block free (call once, before the first acquire).
  void fill() {
    {
      const std::lock_guard lock(mutex_);
      for (auto& free : home_free_) free = 1;
      for (std::int64_t block = static_cast<std::int64_t>(home_free_.size()); block < num_blocks_; ++block) {
        extras_.push_back(block);
      }
    }
    available_.notify_all();
  }

  /// A free block for `split`: its home block if free, else a shared one. std::nullopt once closed.
  std::optional<std::int64_t> acquire(int split) {
    std::unique_lock lock(mutex_);
    auto& home = home_free_.at(static_cast<std::size_t>(split));
    available_.wait(lock, [&] { return closed_ || home != 0 || !extras_.empty(); });
    if (closed_) return std::nullopt;
    return take(split);
  }

  /// Like acquire() but never waits: std::nullopt when no block is free for `split` now, or once closed.
  std::optional<std::int64_t> try_acquire(int split) {
    const std::lock_guard lock(mutex_);
    if (closed_ || (home_free_.at(static_cast<std::size_t>(split)) == 0 && extras_.empty())) return std::nullopt;
    return take(split);
  }

  /// Returns a consumed block. Throws std::out_of_range for a block outside [0, num_blocks).
  void release(std::int64_t block) {
    if (block < 0 || block >= num_blocks_) {
      throw std::out_of_range("BlockPool: block " + std::to_string(block) + " out of range [0, " +
                              std::to_string(num_blocks_) + ")");
    }
    {
      const std::lock_guard lock(mutex_);
      if (block < static_cast<std::int64_t>(home_free_.size())) {
        home_free_[static_cast<std::size_t>(block)] = 1;
      } else {
        extras_.push_back(block);
      }
    }
    available_.notify_all();
  }

  void close() {
    {
      const std::lock_guard lock(mutex_);
      closed_ = true;
    }
    available_.notify_all();
  }

 private:
  // Validates before home_free_ is sized: a negative count would otherwise become a huge size_t.
  static std::size_t checked_num_splits(std::int64_t num_blocks, int num_splits) {
    if (num_splits < 1 || num_blocks < num_splits) {
      throw std::invalid_argument("BlockPool: need at least one block per split (" + std::to_string(num_blocks) +
                                  " blocks for " + std::to_string(num_splits) + " splits)");
    }
    return static_cast<std::size_t>(num_splits);
  }

  /// The home block of `split` if free, else the oldest free extra (the caller holds the lock and
  /// checked that one of them is free).
  std::int64_t take(int split) {
    auto& home = home_free_[static_cast<std::size_t>(split)];
    if (home != 0) {
      home = 0;
      return split;
    }
    const std::int64_t block = extras_.front();
    extras_.pop_front();
    return block;
  }

  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<char> home_free_;
  std::deque<std::int64_t> extras_;
  const std::int64_t num_blocks_;
  bool closed_ = false;
};

}  // namespace pysf::buffers
