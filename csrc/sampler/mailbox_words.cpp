#include "sampler/mailbox_words.h"

#include <stdexcept>
#include <string>
#include <utility>

namespace pysf::sampler {

std::int64_t* checked_mailbox_words(const at::Tensor& tensor, std::int64_t min_words) {
  if (!tensor.defined() || tensor.scalar_type() != at::kLong || tensor.dim() != 1 || !tensor.is_contiguous() ||
      !tensor.device().is_cpu()) {
    throw std::invalid_argument("a worker mailbox must be a contiguous 1-D int64 CPU tensor");
  }
  if (tensor.numel() < min_words) throw std::invalid_argument("the worker mailbox is too small");
  auto* words = tensor.data_ptr<std::int64_t>();
  if (reinterpret_cast<std::uintptr_t>(words) % std::atomic_ref<std::int64_t>::required_alignment != 0) {
    throw std::invalid_argument("the worker mailbox is not aligned for atomic access");
  }
  return words;
}

MailboxWords::MailboxWords(at::Tensor tensor, MailboxLayout layout)
    : tensor_(std::move(tensor)), layout_(layout), words_(checked_mailbox_words(tensor_, 0)) {
  if (tensor_.numel() != layout_.words()) {
    throw std::invalid_argument("the worker mailbox has " + std::to_string(tensor_.numel()) + " words, expected " +
                                std::to_string(layout_.words()) + " for " + std::to_string(layout_.num_splits) +
                                " splits of " + std::to_string(layout_.block_rows) + " envs");
  }
}

}  // namespace pysf::sampler
