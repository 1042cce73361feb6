// Atomic access to the words of a mailbox tensor, shared by the sampler and a worker process.
//
// Words are accessed through std::atomic_ref, which is lock-free for int64 and therefore address-free:
// it works across processes that map the same memory (the tensor is in torch's shared memory).
#pragma once

#include <ATen/core/Tensor.h>

#include <atomic>
#include <cstdint>

#include "sampler/mailbox_layout.h"

namespace pysf::sampler {

/// The words of `tensor`, checked for atomic access: a contiguous 1-D int64 CPU tensor, aligned for
/// std::atomic_ref, at least `min_words` long. Throws std::invalid_argument otherwise.
std::int64_t* checked_mailbox_words(const at::Tensor& tensor, std::int64_t min_words);

/// Atomic word access to a mailbox tensor (int64, contiguous, `layout.words()` long, usually in shared
/// memory). Keeps the tensor alive.
class MailboxWords {
 public:
  /// Throws std::invalid_argument if the tensor does not match the layout.
  MailboxWords(at::Tensor tensor, MailboxLayout layout);

  [[nodiscard]] std::int64_t load(std::int64_t index, std::memory_order order) const {
    return std::atomic_ref<std::int64_t>(words_[index]).load(order);
  }
  void store(std::int64_t index, std::int64_t value, std::memory_order order) const {
    std::atomic_ref<std::int64_t>(words_[index]).store(value, order);
  }
  /// Sets the word to `desired` if it holds `expected` (seq_cst); returns the value it held.
  std::int64_t compare_exchange(std::int64_t index, std::int64_t expected, std::int64_t desired) const {
    std::atomic_ref<std::int64_t>(words_[index]).compare_exchange_strong(expected, desired);
    return expected;
  }
  [[nodiscard]] const MailboxLayout& layout() const { return layout_; }
  [[nodiscard]] const at::Tensor& tensor() const { return tensor_; }

 private:
  static_assert(std::atomic_ref<std::int64_t>::is_always_lock_free, "cross-process atomics need lock-free int64");
  at::Tensor tensor_;
  MailboxLayout layout_;
  std::int64_t* words_;
};

}  // namespace pysf::sampler
