// The worker process's end of its channel to the sampler (worker_mailbox.h describes the protocol).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sampler/mailbox_layout.h"
#include "sampler/mailbox_words.h"
#include "sampler/unique_fd.h"

namespace pysf::sampler {

/// The worker process's end (bound to Python as pysf._C.WorkerMailbox). Single-threaded: the worker's
/// main loop calls it.
class WorkerMailboxEnd {
 public:
  /// Owns the three file descriptors: `commands_posted` (eventfd the sampler signals, see the eventcount
  /// in worker_mailbox.h), `wake_sampler` (eventfd this end signals) and `lifeline` (the worker's end of
  /// the socket pair).
  WorkerMailboxEnd(MailboxWords words, UniqueFd commands_posted, UniqueFd wake_sampler, UniqueFd lifeline);

  /// Claims the mailbox before creating envs; false if the sampler abandoned this worker (exit at once).
  bool attach();
  /// Whether the worker must stop: the sampler asked it to, or is gone (its end of the lifeline closed).
  /// Call it between slow steps (env creation, warm-up): it also bumps the progress word, so the sampler
  /// sees a worker that is busy, not stuck (worker_mailbox.h, "stalls").
  bool stop_requested();
  /// The next command; blocks (poll(), no spinning) until one arrives. Returns kStop when the STOP word
  /// is set or the sampler closed its end of the lifeline. Splits are served round-robin.
  WorkerCommand wait();
  /// Publishes a report for `split` and wakes the sampler if it waits. For kStepped, the first
  /// `num_episodes` records of `episode_records(split)` must hold the finished episodes.
  void post_report(ReportKind kind, int split, std::int64_t num_episodes);
  /// The episode records of `split`: an int64 view of shape [block_rows, kRecordWords] into the mailbox.
  [[nodiscard]] at::Tensor episode_records(int split) const;
  /// Sends `text` through the lifeline (best effort, at most kMaxErrorReportBytes, one write so that the sampler
  /// reads it in one piece). Call just before exiting.
  void report_error(const std::string& text) const;
  [[nodiscard]] const MailboxLayout& layout() const { return words_.layout(); }

 private:
  std::optional<WorkerCommand> take_command();
  [[nodiscard]] bool stop_word_set() const;
  void note_progress();

  MailboxWords words_;
  UniqueFd commands_posted_;
  UniqueFd wake_sampler_;
  UniqueFd lifeline_;
  std::vector<std::int64_t> commands_seen_;  // per split: the last command sequence number read
  int next_split_ = 0;                       // where the next scan starts (round-robin)
};

}  // namespace pysf::sampler
