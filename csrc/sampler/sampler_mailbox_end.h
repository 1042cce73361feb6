// The sampler's end of the channel to one Python env worker process (worker_mailbox.h describes the
// protocol): what connects the sampler to the process, the end itself, and what the sampler can see of
// the worker without talking to it.
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

/// What the sampler can see of a worker without talking to it (for the stall check).
struct WorkerActivity {
  std::int64_t progress = 0;  // the worker's progress word
  bool owes_report = false;   // some split has a command the worker has not reported on yet
  bool attached = false;      // the worker finished starting (worker_mailbox.h, "start-up")
};

/// What connects the sampler to one worker process: the shared mailbox tensor, the two eventfds and the
/// sampler's end of the lifeline socket. The file descriptors are owned.
struct WorkerChannels {
  at::Tensor mailbox;       // int64 words in shared memory, MailboxLayout(num_splits, block_rows)
  UniqueFd wake_worker;     // eventfd: the worker sleeps on it while it has no command
  UniqueFd reports_posted;  // eventfd: the worker signals it when it reports while the proxy sleeps
  UniqueFd lifeline;        // socket: error text from the worker, or a hang-up when it exits
};

/// The sampler's end (used by RemoteWorker). Thread-safety: `post_command` for different splits,
/// `post_stop`, `wake_proxy` and `hang_up_lifeline` may run on any thread (inference threads, the proxy
/// thread, a stopping thread); `take_report` and `wait_for_reports` run on the proxy thread only, and
/// `wait_for_lifeline` and `read_lifeline` on one lifeline-watching thread.
class SamplerMailboxEnd {
 public:
  /// Throws std::invalid_argument if the mailbox does not match `layout`.
  SamplerMailboxEnd(WorkerChannels channels, MailboxLayout layout);

  /// Publishes a command for `split` and wakes the worker if it waits.
  void post_command(CommandKind kind, int split, std::int64_t block, std::int64_t step);
  /// Sets the STOP word and wakes the worker.
  void post_stop();
  /// The report of `split` if one arrived since the last call; throws std::runtime_error on a malformed
  /// report (a kind or episode count the protocol does not allow).
  std::optional<WorkerReport> take_report(int split);
  /// Blocks (poll(), no spinning) until a report may have arrived or `wake_proxy` was called.
  void wait_for_reports();
  /// Wakes `wait_for_reports` (used to stop the proxy thread).
  void wake_proxy();
  /// Blocks (poll()) until the lifeline is readable (the worker sent its error text or exited, or
  /// `hang_up_lifeline` was called): true; or until `timeout_seconds` passed (< 0: never): false.
  bool wait_for_lifeline(double timeout_seconds = -1.0);
  /// The worker's progress word, whether it owes a report, whether it attached (any thread).
  [[nodiscard]] WorkerActivity activity() const;
  /// The worker's error text, or nullopt if the lifeline hung up without one. After `wait_for_lifeline`.
  std::optional<std::string> read_lifeline();
  /// Shuts the lifeline down: wakes `wait_for_lifeline`, and the worker sees the sampler gone.
  void hang_up_lifeline();
  [[nodiscard]] const MailboxLayout& layout() const { return words_.layout(); }

 private:
  bool reports_pending() const;

  MailboxWords words_;
  UniqueFd wake_worker_;
  UniqueFd reports_posted_;
  UniqueFd lifeline_;
  std::vector<std::int64_t> reports_seen_;  // per split: the last report sequence number read
};

/// Sets a still-starting worker's state to kAbandoned; true if it had not attached yet (it holds no
/// envs and may be terminated at once), false if it had. For the process that manages the workers.
/// Throws std::invalid_argument unless `mailbox` is a mailbox tensor.
bool abandon_if_starting(const at::Tensor& mailbox);

}  // namespace pysf::sampler
