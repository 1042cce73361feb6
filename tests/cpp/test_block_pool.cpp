// BlockPool (csrc/buffers/block_pool.h): the contract its header states, from threads of this process so
// that it also runs under ASan and TSan. Home blocks (split i's block i is only ever handed to split i,
// so a fast split cannot take a slow split's block; the shared extras go oldest first), try_acquire
// never waiting, acquire sleeping (its thread CPU time is measured) until a block it may take is
// released, close() waking every waiter, and a stress in which splits and a consumer pass blocks
// around and no block is ever held twice at once. A lost wake-up shows as a deadlock, which a watchdog
// turns into a failure (closing the pool so that the threads can be joined).
#include <pthread.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "buffers/block_pool.h"
#include "buffers/bounded_queue.h"
#include "check.h"
#include "thread_checks.h"

using pysf::buffers::BlockPool;
using pysf::buffers::BoundedQueue;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using pysf::test::expect_sleeping;
using pysf::test::Watchdog;

namespace {

/// acquire(split) on its own thread, reporting when it has returned and with what.
class BlockedAcquire {
 public:
  BlockedAcquire(BlockPool& pool, int split)
      : thread_([this, &pool, split] {
          block_ = pool.acquire(split);
          returned_.store(true);
        }) {}
  ~BlockedAcquire() { join(); }
  BlockedAcquire(const BlockedAcquire&) = delete;
  BlockedAcquire& operator=(const BlockedAcquire&) = delete;

  void expect_sleeping(const std::string& what) { ::expect_sleeping(thread_.native_handle(), returned_, what); }
  [[nodiscard]] bool returned() const { return returned_.load(); }
  /// Waits for the acquire to return; what it returned.
  std::optional<std::int64_t> join() {
    if (thread_.joinable()) thread_.join();
    return block_;
  }

 private:
  std::optional<std::int64_t> block_;
  std::atomic<bool> returned_{false};
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace

TEST_CASE(a_pool_needs_one_block_per_split) {
  EXPECT_THROWS(BlockPool(1, 2), std::invalid_argument, "need at least one block per split (1 blocks for 2 splits)");
  EXPECT_THROWS(BlockPool(4, 0), std::invalid_argument, "need at least one block per split");
  EXPECT_THROWS(BlockPool(4, -1), std::invalid_argument, "need at least one block per split");
  BlockPool exact(3, 3);
  exact.fill();
  for (int split = 0; split < 3; ++split) EXPECT(exact.try_acquire(split) == split);
}

TEST_CASE(nothing_is_free_before_fill) {
  BlockPool pool(3, 2);
  EXPECT(!pool.try_acquire(0).has_value() && !pool.try_acquire(1).has_value());
  pool.fill();
  EXPECT(pool.try_acquire(1) == 1);
}

TEST_CASE(each_split_gets_its_home_block_first_then_the_oldest_extra) {
  BlockPool pool(5, 2);  // homes 0 and 1, extras 2, 3, 4
  pool.fill();
  EXPECT(pool.acquire(0) == 0);
  EXPECT(pool.acquire(0) == 2);
  EXPECT(pool.try_acquire(0) == 3);
  EXPECT(pool.acquire(0) == 4);
  // Split 0 has taken every extra: it must not take split 1's home block, which is still free.
  EXPECT(!pool.try_acquire(0).has_value());
  EXPECT(pool.acquire(1) == 1);
  EXPECT(!pool.try_acquire(1).has_value());

  // A released home block goes back to its own split only; released extras are shared, oldest first.
  pool.release(1);
  EXPECT(!pool.try_acquire(0).has_value());
  pool.release(4);
  pool.release(2);
  EXPECT(pool.try_acquire(1) == 1);  // its home block, although extras are free
  EXPECT(pool.try_acquire(1) == 4);
  EXPECT(pool.try_acquire(0) == 2);
  EXPECT(!pool.try_acquire(0).has_value() && !pool.try_acquire(1).has_value());
  pool.release(0);
  EXPECT(pool.acquire(0) == 0);
}

TEST_CASE(out_of_range_splits_and_blocks_are_rejected) {
  BlockPool pool(3, 2);
  pool.fill();
  EXPECT_THROWS(pool.acquire(2), std::out_of_range, "");
  EXPECT_THROWS(pool.try_acquire(-1), std::out_of_range, "");
  EXPECT_THROWS(pool.release(3), std::out_of_range, "block 3");
  EXPECT_THROWS(pool.release(-1), std::out_of_range, "block -1");
  // Nothing changed: every block is still free exactly once.
  EXPECT(pool.try_acquire(0) == 0 && pool.try_acquire(0) == 2 && !pool.try_acquire(0).has_value());
  EXPECT(pool.try_acquire(1) == 1);
}

TEST_CASE(acquire_sleeps_until_a_block_it_may_take_is_released) {
  BlockPool pool(3, 2);
  pool.fill();
  EXPECT(pool.acquire(0) == 0 && pool.acquire(0) == 2);
  Watchdog watchdog(10s, "the blocked acquire", [&] { pool.close(); });
  {
    BlockedAcquire waiter(pool, 0);
    waiter.expect_sleeping("acquire with no block free for its split");
    // Split 1's home block is free the whole time; releasing it again must not hand it to split 0 either.
    EXPECT(pool.try_acquire(1) == 1);
    pool.release(1);
    waiter.expect_sleeping("acquire woken by another split's home block");
    pool.release(2);  // a shared extra: split 0 may take it
    EXPECT(waiter.join() == 2);
  }
  {
    BlockedAcquire waiter(pool, 0);
    waiter.expect_sleeping("acquire with no block free for its split");
    pool.release(0);  // its home block
    EXPECT(waiter.join() == 0);
  }
}

TEST_CASE(close_wakes_every_waiter_and_later_acquires_return_nothing) {
  BlockPool pool(2, 2);
  pool.fill();
  EXPECT(pool.acquire(0) == 0 && pool.acquire(1) == 1);
  Watchdog watchdog(10s, "the acquires after close()", [&] {
    for (int i = 0; i < 8; ++i) pool.close();  // notifies again, once per waiter, so that they can be joined
  });
  std::vector<std::unique_ptr<BlockedAcquire>> waiters;
  for (int split : {0, 0, 1}) waiters.push_back(std::make_unique<BlockedAcquire>(pool, split));
  std::this_thread::sleep_for(100ms);
  for (const auto& waiter : waiters) EXPECT(!waiter->returned());
  pool.close();
  for (const auto& waiter : waiters) EXPECT(!waiter->join().has_value());

  pool.release(0);  // a consumer may still hand blocks back during shutdown
  const auto start = Clock::now();
  EXPECT(!pool.acquire(0).has_value());
  EXPECT(!pool.try_acquire(0).has_value());
  EXPECT(Clock::now() - start < 5s);
}

TEST_CASE(splits_and_a_consumer_pass_blocks_around_and_no_block_is_held_twice) {
  // Each split acquires a block, "fills" it, hands it to the consumer (a queue, as the sampler's
  // completed blocks), and goes on; the consumer releases blocks in batches, out of order. Every
  // block has one holder at a time, home blocks only ever go to their own split, and every split
  // keeps going however fast the others are.
  constexpr int kSplits = 4;
  constexpr std::int64_t kBlocks = 6;
  constexpr int kBlocksPerSplit = 3000;
  BlockPool pool(kBlocks, kSplits);
  pool.fill();
  BoundedQueue<std::int64_t> completed(kBlocks);
  Watchdog watchdog(120s, "the block-passing stress", [&] {
    pool.close();
    completed.close();
  });

  constexpr int kFree = -1, kWithConsumer = -2;
  std::vector<std::atomic<int>> holder(kBlocks);  // kFree, kWithConsumer, or the split that holds it
  for (auto& h : holder) h.store(kFree);
  std::atomic<int> violations{0};
  auto hand_over = [&](std::int64_t block, int from, int to) {
    int expected = from;
    if (!holder[static_cast<std::size_t>(block)].compare_exchange_strong(expected, to)) violations.fetch_add(1);
  };
  std::vector<int> done(kSplits, 0);
  std::vector<std::thread> splits;
  for (int split = 0; split < kSplits; ++split) {
    splits.emplace_back([&, split] {
      for (int i = 0; i < kBlocksPerSplit; ++i) {
        std::optional<std::int64_t> block = i % 2 == 0 ? pool.try_acquire(split) : std::nullopt;
        if (!block) block = pool.acquire(split);
        if (!block) return;  // closed by the watchdog
        hand_over(*block, kFree, split);
        if (*block < kSplits && *block != split) violations.fetch_add(1);  // another split's home block
        if (i % 64 == 0) std::this_thread::yield();
        hand_over(*block, split, kWithConsumer);
        if (!completed.push(*block)) return;
        done[static_cast<std::size_t>(split)] += 1;
      }
    });
  }
  std::thread consumer([&] {
    std::vector<std::int64_t> batch;
    while (true) {
      const std::optional<std::int64_t> first = completed.pop();
      if (!first) return;
      batch.assign(1, *first);
      completed.pop_available(batch, 2);
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) {  // newest first
        hand_over(*it, kWithConsumer, kFree);
        pool.release(*it);
      }
    }
  });
  for (auto& split : splits) split.join();
  completed.close();
  consumer.join();

  EXPECT(violations.load() == 0);
  for (int split = 0; split < kSplits; ++split) {
    EXPECT_MSG(done[static_cast<std::size_t>(split)] >= kBlocksPerSplit,
               "split " + std::to_string(split) + " completed " + std::to_string(done[static_cast<std::size_t>(split)]));
  }
}
