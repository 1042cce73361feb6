// LeftRight<T>: two replicas of a value, so readers never wait for a writer and never see a half-written one.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <type_traits>
#include <utility>

namespace pysf::inference {

/// Publication of a large value that is replaced as a whole (e.g. model weights), lock-free for readers.
///
/// Two replicas exist. Readers pin the *current* replica for the duration of `read` and never block:
/// pinning is one atomic increment plus a re-check (retried only if a publication raced with it).
/// A writer modifies the *spare* replica: it first waits (on a condition variable, no spinning) until
/// the readers that pinned the spare before the previous publication have left, then runs its update,
/// then makes the spare current with one atomic store. Hence a reader sees a replica either entirely
/// before or entirely after any write, never a mix, and readers never wait for the update itself.
///
/// A write only updates one replica, so each write must bring the spare to a complete state on its own
/// (e.g. assign *every* weight); the replica it lands in may hold an older write than the current one.
///
/// Thread safety: `read` and `read_all` may run concurrently from any number of threads, also
/// concurrently with `write`; concurrent `write`s are serialised. The object must outlive every call.
/// Readers must only read the replica they are given (they get a const reference). A callback may
/// `read`, but must not `write` from inside `read_all` or `write` (writers are not re-entrant), nor
/// `write` twice from inside `read` (the second write would wait for the calling reader).
template <typename T>
class LeftRight {
 public:
  /// Builds both replicas with `make_replica()`, called twice: the two results must not share mutable
  /// state, since a writer modifies one while readers use the other.
  template <typename Factory>
  explicit LeftRight(Factory&& make_replica) : replicas_{make_replica(), make_replica()} {}

  LeftRight(const LeftRight&) = delete;
  LeftRight& operator=(const LeftRight&) = delete;

  /// Calls `reader(const T&)` on the current replica, pinned so no writer touches it meanwhile, and
  /// returns its result by value (a reference into the replica would outlive the pin). Never blocks on
  /// a writer.
  template <typename Reader>
  auto read(Reader&& reader) const {
    const ReaderPin pin(*this);
    return std::invoke(std::forward<Reader>(reader), std::as_const(replicas_[pin.index()]));
  }

  /// Calls `reader(const T&)` on each replica in turn while holding off writers (readers keep going).
  /// For work that must see every replica, e.g. warming up per-replica caches.
  template <typename Reader>
  void read_all(Reader&& reader) const {
    const std::lock_guard writer_lock(writer_mutex_);
    for (const T& replica : replicas_) std::invoke(reader, replica);
  }

  /// Runs `writer(T&)` on the spare replica, then publishes it. Returns once the new value is current;
  /// blocks while readers that started before the previous publication are still on the spare. If
  /// `writer` throws, nothing is published (the spare may be left partially written; the next write
  /// overwrites it).
  template <typename Writer>
  void write(Writer&& writer) {
    const std::lock_guard writer_lock(writer_mutex_);
    const int spare = 1 - current_.load();
    wait_until_unpinned(spare);
    std::invoke(std::forward<Writer>(writer), replicas_[spare]);
    current_.store(spare);
  }

 private:
  // All atomics below use sequentially consistent ordering on purpose: correctness rests on two
  // store-then-load (Dekker-style) pairs that weaker orderings would not order:
  //  * reader: increment pin count, then re-load current  /  writer: store current, then load pin count;
  //  * reader: decrement pin count, then load waiting flag  /  writer: set waiting flag, then load count.
  class ReaderPin {
   public:
    explicit ReaderPin(const LeftRight& owner) : owner_(owner) {
      for (;;) {
        index_ = owner_.current_.load();
        owner_.pin_counts_[index_].value.fetch_add(1);
        // A publication between the load and the increment may already have handed this replica to a
        // writer that saw no pins; re-checking `current_` detects that case and we take the new one.
        if (owner_.current_.load() == index_) return;
        unpin();
      }
    }
    ~ReaderPin() { unpin(); }
    ReaderPin(const ReaderPin&) = delete;
    ReaderPin& operator=(const ReaderPin&) = delete;

    [[nodiscard]] int index() const { return index_; }

   private:
    void unpin() const {
      if (owner_.pin_counts_[index_].value.fetch_sub(1) == 1 && owner_.writer_waiting_.load()) {
        // Taking the mutex orders this notify after the writer's predicate check (no lost wake-up).
        const std::lock_guard lock(owner_.drain_mutex_);
        owner_.drained_.notify_all();
      }
    }

    const LeftRight& owner_;
    int index_ = 0;
  };

  void wait_until_unpinned(int index) {
    auto unpinned = [&] { return pin_counts_[index].value.load() == 0; };
    if (unpinned()) return;
    std::unique_lock lock(drain_mutex_);
    writer_waiting_.store(true);
    drained_.wait(lock, unpinned);
    writer_waiting_.store(false);
  }

  // Separate cache lines: readers hammer the current replica's count; keep it off the other's line.
  struct alignas(64) PinCount {
    std::atomic<std::int64_t> value{0};
  };

  std::array<T, 2> replicas_;
  std::atomic<int> current_{0};
  mutable std::array<PinCount, 2> pin_counts_;
  mutable std::atomic<bool> writer_waiting_{false};
  mutable std::mutex drain_mutex_;
  mutable std::condition_variable drained_;
  // Serialises writers (and read_all, which must not overlap a write to the spare).
  mutable std::mutex writer_mutex_;
};

}  // namespace pysf::inference
