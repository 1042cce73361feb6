#include "sampler/mailbox_layout.h"

#include <stdexcept>

namespace pysf::sampler {

MailboxLayout::MailboxLayout(int splits, std::int64_t rows) : num_splits(splits), block_rows(rows) {
  if (num_splits < 1 || block_rows < 1) {
    throw std::invalid_argument("a worker mailbox needs num_splits >= 1 and block_rows >= 1");
  }
  const std::int64_t report_words = kRecords + block_rows * kRecordWords;
  const std::int64_t report_lines = (report_words + kWordsPerLine - 1) / kWordsPerLine;
  split_words_ = (1 + report_lines) * kWordsPerLine;
}

}  // namespace pysf::sampler
