// Tests of LeftRight<T> (csrc/inference/left_right.h) on plain memory, so that under ThreadSanitizer every
// access is instrumented and the publication protocol itself is checked, not just its observable results.
#include "inference/left_right.h"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <latch>
#include <stop_token>
#include <thread>
#include <vector>

#include "check.h"

using pysf::inference::LeftRight;
using namespace std::chrono_literals;

namespace {

// Large enough that a torn read (some words from one write, some from another) is likely if the
// protocol were wrong; every word of a published replica holds the same number.
struct Block {
  std::array<std::int64_t, 256> words{};
  std::int64_t generation = 0;
};

}  // namespace

TEST_CASE(each_replica_is_built_separately_and_reads_see_the_initial_value) {
  int builds = 0;
  const LeftRight<int> value([&] { return 40 + builds++; });
  EXPECT(builds == 2);
  EXPECT(value.read([](const int& v) { return v; }) == 40);
}

TEST_CASE(write_publishes_to_later_reads) {
  LeftRight<int> value([] { return 0; });
  for (int i = 1; i <= 5; ++i) {
    value.write([&](int& v) { v = i; });
    EXPECT(value.read([](const int& v) { return v; }) == i);
  }
}

TEST_CASE(throwing_writer_publishes_nothing) {
  LeftRight<int> value([] { return 1; });
  bool threw = false;
  try {
    value.write([](int& v) {
      v = 99;
      throw std::runtime_error("boom");
    });
  } catch (const std::runtime_error&) {
    threw = true;
  }
  EXPECT(threw);
  EXPECT(value.read([](const int& v) { return v; }) == 1);
  value.write([](int& v) { v = 2; });  // the next full write overwrites the half-written spare
  EXPECT(value.read([](const int& v) { return v; }) == 2);
}

// A reader pinned on the current replica must not hold up the next write (it goes to the spare), must
// hold up the one after (which would overwrite its replica), and must never make other readers wait.
TEST_CASE(writer_waits_only_for_readers_of_the_spare_and_readers_never_wait) {
  LeftRight<int> value([] { return 0; });
  std::latch reader_pinned(1);
  std::promise<void> release_reader;
  std::shared_future<void> reader_released = release_reader.get_future().share();

  std::future<int> slow_read = std::async(std::launch::async, [&] {
    return value.read([&](const int& v) {
      reader_pinned.count_down();
      reader_released.wait();
      return v;
    });
  });
  reader_pinned.wait();

  value.write([](int& v) { v = 1; });  // spare is free: must not block on the pinned reader
  EXPECT(value.read([](const int& v) { return v; }) == 1);

  std::atomic<bool> second_write_done{false};
  std::future<void> second_write = std::async(std::launch::async, [&] {
    value.write([](int& v) { v = 2; });
    second_write_done.store(true);
  });
  // The second write targets the pinned replica; give it time to (wrongly) go ahead.
  std::this_thread::sleep_for(100ms);
  EXPECT(!second_write_done.load());
  EXPECT(value.read([](const int& v) { return v; }) == 1);  // new readers are not blocked meanwhile

  release_reader.set_value();
  EXPECT(slow_read.get() == 0);  // the slow reader kept the replica it pinned, untouched
  second_write.get();           // and the waiting writer is woken once it leaves
  EXPECT(second_write_done.load());
  EXPECT(value.read([](const int& v) { return v; }) == 2);
}

TEST_CASE(concurrent_readers_never_see_a_torn_or_stale_generation) {
  LeftRight<Block> blocks([] { return Block{}; });
  std::atomic<std::int64_t> published{0};  // the last generation whose write() returned
  std::atomic<std::int64_t> torn_reads{0};
  std::atomic<std::int64_t> stale_reads{0};
  std::atomic<std::int64_t> total_reads{0};
  {
    std::vector<std::jthread> readers;
    for (int r = 0; r < 3; ++r) {
      readers.emplace_back([&](std::stop_token stop) {
        while (!stop.stop_requested()) {
          const std::int64_t floor = published.load();
          const auto [consistent, generation] = blocks.read([](const Block& block) {
            bool same = true;
            for (std::int64_t word : block.words) same = same && word == block.generation;
            return std::pair(same, block.generation);
          });
          if (!consistent) torn_reads.fetch_add(1);
          // A read that starts after write(g) returned must see g or later.
          if (generation < floor) stale_reads.fetch_add(1);
          total_reads.fetch_add(1);
        }
      });
    }
    const auto deadline = std::chrono::steady_clock::now() + 500ms;
    std::int64_t generation = 0;
    while (std::chrono::steady_clock::now() < deadline || generation < 100) {
      ++generation;
      blocks.write([&](Block& block) {
        block.words.fill(generation);
        block.generation = generation;
      });
      published.store(generation);
    }
  }  // jthreads request stop and join here
  EXPECT(torn_reads.load() == 0);
  EXPECT(stale_reads.load() == 0);
  EXPECT(total_reads.load() > 0);
  EXPECT(published.load() >= 100);
}

TEST_CASE(concurrent_writers_are_serialised) {
  LeftRight<Block> blocks([] { return Block{}; });
  constexpr int kWritesPerThread = 200;
  {
    std::vector<std::jthread> writers;
    for (int w = 0; w < 3; ++w) {
      writers.emplace_back([&] {
        for (int i = 0; i < kWritesPerThread; ++i) {
          blocks.write([&](Block& block) {
            // Read-modify-write of the spare is only safe if writers exclude each other; each write
            // leaves the spare complete, as the contract asks.
            const std::int64_t next = blocks.read([](const Block& current) { return current.generation; }) + 1;
            block.words.fill(next);
            block.generation = next;
          });
        }
      });
    }
  }
  EXPECT(blocks.read([](const Block& block) { return block.generation; }) == 3 * kWritesPerThread);
}
