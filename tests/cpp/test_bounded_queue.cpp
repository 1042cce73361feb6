// BoundedQueue (csrc/buffers/bounded_queue.h): the contract its header states, from threads of this
// process so that it also runs under ASan and TSan. FIFO order, the capacity bound (push waits while
// full, pop_for / pop_available do not wait past their bound), close() waking every waiter, waiters
// that sleep instead of spinning (their thread CPU time is measured), and a multi-producer
// multi-consumer stress in which every item must arrive exactly once and each producer's items in
// order. A lost wake-up shows as a deadlock, which a watchdog turns into a failure (closing the queue
// so that the threads can be joined).
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

#include "buffers/bounded_queue.h"
#include "check.h"
#include "thread_checks.h"

using pysf::buffers::BoundedQueue;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using pysf::test::eventually;
using pysf::test::expect_sleeping;
using pysf::test::Watchdog;

namespace {

}  // namespace

TEST_CASE(a_zero_capacity_is_rejected) {
  EXPECT_THROWS(BoundedQueue<int>(0), std::invalid_argument, "capacity must be positive");
  const BoundedQueue<int> queue(3);
  EXPECT(queue.capacity() == 3 && queue.size() == 0 && !queue.closed());
}

TEST_CASE(items_come_out_in_the_order_they_went_in) {
  BoundedQueue<int> queue(5);
  for (int round = 0; round < 3; ++round) {  // around the deque's ends more than once
    for (int i = 0; i < 5; ++i) EXPECT(queue.push(round * 10 + i));
    EXPECT(queue.size() == 5);
    for (int i = 0; i < 3; ++i) EXPECT(queue.pop() == round * 10 + i);
    EXPECT(queue.push(round * 10 + 5));
    for (int i = 3; i < 6; ++i) EXPECT(queue.pop() == round * 10 + i);
    EXPECT(queue.size() == 0);
  }
  // Move-only items are moved, not copied.
  BoundedQueue<std::unique_ptr<int>> owners(2);
  EXPECT(owners.push(std::make_unique<int>(7)));
  const std::optional<std::unique_ptr<int>> got = owners.pop();
  EXPECT(got.has_value() && **got == 7);
}

TEST_CASE(push_waits_without_spinning_while_full_until_a_pop_makes_room) {
  BoundedQueue<int> queue(2);
  EXPECT(queue.push(1) && queue.push(2));
  std::atomic<bool> returned{false};
  bool pushed = false;
  Watchdog watchdog(10s, "the blocked push", [&] { queue.close(); });
  std::thread producer([&] {
    pushed = queue.push(3);
    returned.store(true);
  });
  expect_sleeping(producer.native_handle(), returned, "a push into a full queue");
  EXPECT(queue.size() == 2);  // the bound holds while the producer waits
  EXPECT(queue.pop() == 1);
  producer.join();
  EXPECT(pushed);
  EXPECT(queue.pop() == 2 && queue.pop() == 3);
}

TEST_CASE(pop_waits_without_spinning_while_empty_until_a_push) {
  BoundedQueue<int> queue(4);
  std::atomic<bool> returned{false};
  std::optional<int> got;
  Watchdog watchdog(10s, "the blocked pop", [&] { queue.close(); });
  std::thread consumer([&] {
    got = queue.pop();
    returned.store(true);
  });
  expect_sleeping(consumer.native_handle(), returned, "a pop from an empty queue");
  const auto pushed_at = Clock::now();
  EXPECT(queue.push(42));
  consumer.join();
  EXPECT(got == 42);
  EXPECT(Clock::now() - pushed_at < 2s);
}

TEST_CASE(pop_for_times_out_when_empty_and_returns_an_item_as_soon_as_one_comes) {
  BoundedQueue<int> queue(1);
  const auto start = Clock::now();
  EXPECT(!queue.pop_for(50ms).has_value());
  EXPECT(Clock::now() - start >= 50ms);

  EXPECT(queue.push(5));
  EXPECT(queue.pop_for(0ms) == 5);  // an item already queued is taken without waiting

  std::optional<int> got;
  std::thread consumer([&] { got = queue.pop_for(30s); });
  std::this_thread::sleep_for(50ms);
  const auto pushed_at = Clock::now();
  EXPECT(queue.push(6));
  consumer.join();
  EXPECT(got == 6);
  EXPECT(Clock::now() - pushed_at < 5s);  // woken by the push, not by the timeout
}

TEST_CASE(pop_available_takes_at_most_what_is_there_and_wakes_every_blocked_producer) {
  BoundedQueue<int> queue(3);
  std::vector<int> out = {-1};
  EXPECT(queue.pop_available(out, 10) == 0);  // never waits
  EXPECT(out.size() == 1);
  for (int i = 0; i < 3; ++i) EXPECT(queue.push(i));
  EXPECT(queue.pop_available(out, 2) == 2);
  EXPECT((out == std::vector<int>{-1, 0, 1}));
  EXPECT(queue.size() == 1);

  // Full again, with two producers waiting: taking two items at once must wake both.
  EXPECT(queue.push(3) && queue.push(4));
  Watchdog watchdog(10s, "the producers blocked on a full queue", [&] { queue.close(); });
  std::atomic<int> pushed{0};
  std::vector<std::thread> producers;
  for (int value : {100, 101}) {
    producers.emplace_back([&, value] {
      if (queue.push(value)) pushed.fetch_add(1);
    });
  }
  std::this_thread::sleep_for(100ms);
  EXPECT(pushed.load() == 0);
  out.clear();
  EXPECT(queue.pop_available(out, 2) == 2);
  EXPECT((out == std::vector<int>{2, 3}));
  for (auto& producer : producers) producer.join();
  EXPECT(pushed.load() == 2);
  out.clear();
  EXPECT(queue.pop_available(out, 10) == 3);
  EXPECT(out[0] == 4 && ((out[1] == 100 && out[2] == 101) || (out[1] == 101 && out[2] == 100)));
}

TEST_CASE(close_wakes_blocked_consumers_and_producers) {
  BoundedQueue<int> empty(2);
  BoundedQueue<int> full(1);
  EXPECT(full.push(1));
  Watchdog watchdog(10s, "the waiters after close()", [&] {
    for (int i = 0; i < 8; ++i) {  // notifies again, once per waiter, so that the threads can be joined
      empty.close();
      full.close();
    }
  });
  std::atomic<int> consumers_woken{0};
  std::atomic<bool> push_failed{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      if (!empty.pop().has_value()) consumers_woken.fetch_add(1);
    });
  }
  threads.emplace_back([&] { push_failed.store(!full.push(2)); });
  threads.emplace_back([&] {
    if (!empty.pop_for(60s).has_value()) consumers_woken.fetch_add(1);
  });
  std::this_thread::sleep_for(100ms);
  EXPECT(consumers_woken.load() == 0 && !push_failed.load());
  empty.close();
  full.close();
  for (auto& thread : threads) thread.join();
  EXPECT(consumers_woken.load() == 4);
  EXPECT(push_failed.load());
  EXPECT(empty.closed() && full.closed());
}

TEST_CASE(after_close_push_fails_and_pop_drains_what_is_left) {
  BoundedQueue<int> queue(4);
  EXPECT(queue.push(1) && queue.push(2));
  queue.close();
  EXPECT(!queue.push(3));  // dropped
  EXPECT(queue.size() == 2);
  EXPECT(queue.pop() == 1);
  EXPECT(queue.pop_for(10s) == 2);
  const auto start = Clock::now();
  EXPECT(!queue.pop().has_value());
  EXPECT(!queue.pop_for(10s).has_value());  // closed and drained: no waiting
  EXPECT(Clock::now() - start < 5s);
  queue.close();  // closing twice is harmless
  EXPECT(queue.closed());
}

TEST_CASE(many_producers_and_consumers_pass_every_item_exactly_once_in_producer_order) {
  constexpr int kProducers = 4;
  constexpr int kConsumers = 3;
  constexpr int kItemsPerProducer = 20000;
  BoundedQueue<std::int64_t> queue(8);  // small: producers block on it often
  Watchdog watchdog(120s, "the producer/consumer stress", [&] { queue.close(); });

  // Item = producer * kItemsPerProducer + sequence number.
  std::vector<std::vector<std::int64_t>> received(kConsumers);
  std::vector<std::thread> consumers;
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&, c] {
      // Mix the three ways to take items.
      std::vector<std::int64_t> batch;
      for (std::uint64_t turn = 0;; ++turn) {
        if (turn % 3 == 0) {
          batch.clear();
          if (queue.pop_available(batch, 5) > 0) {
            received[c].insert(received[c].end(), batch.begin(), batch.end());
            continue;
          }
        }
        const std::optional<std::int64_t> item = turn % 3 == 1 ? queue.pop_for(1ms) : queue.pop();
        if (item) {
          received[c].push_back(*item);
        } else if (queue.closed() && queue.size() == 0) {
          return;
        }
      }
    });
  }
  std::vector<std::thread> producers;
  std::atomic<int> failed_pushes{0};
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kItemsPerProducer; ++i) {
        if (!queue.push(std::int64_t{p} * kItemsPerProducer + i)) failed_pushes.fetch_add(1);
      }
    });
  }
  for (auto& producer : producers) producer.join();
  EXPECT(eventually([&] { return queue.size() == 0; }, 60s));
  queue.close();
  for (auto& consumer : consumers) consumer.join();

  EXPECT(failed_pushes.load() == 0);
  std::vector<int> seen(kProducers * kItemsPerProducer, 0);
  for (int c = 0; c < kConsumers; ++c) {
    std::vector<std::int64_t> last(kProducers, -1);  // FIFO: one producer's items reach a consumer in order
    for (const std::int64_t item : received[c]) {
      const auto producer = static_cast<std::size_t>(item / kItemsPerProducer);
      EXPECT_MSG(item > last[producer], "consumer " + std::to_string(c) + " got " + std::to_string(item) +
                                            " after " + std::to_string(last[producer]));
      last[producer] = item;
      seen[static_cast<std::size_t>(item)] += 1;
    }
  }
  int lost = 0, duplicated = 0;
  for (const int count : seen) {
    lost += count == 0;
    duplicated += count > 1;
  }
  EXPECT_MSG(lost == 0 && duplicated == 0,
             std::to_string(lost) + " items lost, " + std::to_string(duplicated) + " delivered more than once");
}
