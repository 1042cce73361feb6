// BoundedQueue<T>: a blocking multi-producer multi-consumer FIFO with a fixed capacity and close().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

namespace pysf::buffers {

/// A FIFO of at most `capacity` items shared by any number of producer and consumer threads.
///
/// `push` blocks while the queue is full (back-pressure) and `pop` blocks while it is empty; both wait
/// on condition variables, never spin. `close()` wakes every waiter: afterwards `push` returns false
/// and drops the item, and `pop` returns the items still queued and then std::nullopt, so threads
/// blocked on the queue can always be shut down. Thread-safe; not copyable.
template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t capacity) : capacity_(capacity) {
    if (capacity == 0) throw std::invalid_argument("BoundedQueue: capacity must be positive");
  }
  BoundedQueue(const BoundedQueue&) = delete;
  BoundedQueue& operator=(const BoundedQueue&) = delete;

  /// Appends `item`, waiting while the queue is full. Returns false (item dropped) once closed.
  bool push(T item) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    lock.unlock();
    not_empty_.notify_one();
    return true;
  }

  /// Removes the oldest item, waiting while the queue is empty; std::nullopt once closed and drained.
  std::optional<T> pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    return take_one(lock);
  }

  /// Like pop, but gives up after `timeout` (std::nullopt: timed out, or closed and drained).
  template <typename Rep, typename Period>
  std::optional<T> pop_for(std::chrono::duration<Rep, Period> timeout) {
    std::unique_lock lock(mutex_);
    not_empty_.wait_for(lock, timeout, [&] { return closed_ || !items_.empty(); });
    return take_one(lock);
  }

  /// Moves up to `max_items` queued items into `out` without waiting; returns how many were moved.
  std::size_t pop_available(std::vector<T>& out, std::size_t max_items) {
    std::unique_lock lock(mutex_);
    std::size_t moved = 0;
    while (moved < max_items && !items_.empty()) {
      out.push_back(std::move(items_.front()));
      items_.pop_front();
      ++moved;
    }
    lock.unlock();
    if (moved > 0) not_full_.notify_all();
    return moved;
  }

  /// Wakes all waiters; later pushes fail, pops drain what is left.
  void close() {
    {
      const std::lock_guard lock(mutex_);
      closed_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
  }

  [[nodiscard]] bool closed() const {
    const std::lock_guard lock(mutex_);
    return closed_;
  }

  [[nodiscard]] std::size_t size() const {
    const std::lock_guard lock(mutex_);
    return items_.size();
  }

  [[nodiscard]] std::size_t capacity() const { return capacity_; }

 private:
  std::optional<T> take_one(std::unique_lock<std::mutex>& lock) {
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    lock.unlock();
    not_full_.notify_one();
    return item;
  }

  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace pysf::buffers
