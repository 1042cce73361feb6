// The channel between the sampler and one Python env worker process: shared-memory mailbox slots,
// eventfd wake-ups and a lifeline socket. Both ends live here so that one file owns the layout.
#pragma once

#include <ATen/core/Tensor.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pysf::sampler {

// ---- why not pipes --------------------------------------------------------------------------------
// Per split step the worker and the sampler exchange two tiny notifications ("stepped", "act"). Over
// pipes each was a write() and a read(), and pipe writes wake the reader with the synchronous hint
// (WF_SYNC), which invites the scheduler to run the woken thread on the writer's CPU, preempting it.
// Here the payload (a few words per split) sits in shared memory, and the wake-up is an eventfd_write()
// without that hint, issued only when the reader actually sleeps (the eventcount below). Measured on
// the 2-vCPU development VM: a report costs the worker ~12 µs when a CPU is idle (the wake-up IPI);
// with two worker processes the slow tail of reports (p90) fell from 150-240 µs to 50-75 µs. When
// other work keeps every CPU busy, the scheduler may still run the sampler's threads on the worker's
// CPU (~160 µs per report, pipes or not); only CPU affinity that keeps them apart avoids that.
//
// ---- the protocol -----------------------------------------------------------------------------------
// Per split s there are two slots, each with a sequence number bumped once per message:
//   * the command slot (sampler -> worker): ASSIGN block b (reset the split's envs, write observations
//     at step 0 of b) or ACT on (block b, step t) (actions are written: step the envs);
//   * the report slot (worker -> sampler): READY (initial observations written) or STEPPED (step t+1
//     observations and step t rewards/flags written), with the episodes that finished in that step.
// Commands and reports of one split strictly alternate (ASSIGN, READY, ACT, STEPPED, ACT, STEPPED, ...),
// so one slot per direction and split is enough: a writer never overwrites a message its reader has not
// consumed (the sampler reads a report completely before it submits the inference request that leads
// to the next command, and the worker copies a command's fields before it posts the report).
// A mailbox is created zeroed (sequence numbers 0: nothing posted) before either process uses it. Its
// header holds the STOP word (the worker must exit), the worker's start-up state (below) and the two
// "waiting" words (below).
//
// Writing a message: store the fields, store the sequence number (release), then wake the reader if it
// waits. Reading: load the sequence number (acquire); if it changed, load the fields. The acquire/release
// pair orders the fields, and the trajectory-buffer data written before the message (by C++, or by numpy
// earlier on the same thread), before the reader's accesses on every architecture; nothing relies on
// x86's strong ordering.
//
// Waking without losing a wake-up, and without a syscall when the reader is busy (an eventcount):
//   reader, with nothing new:  waiting = 1; fence(seq_cst); scan again; poll() on its eventfd only if
//                              that scan found nothing either; after waking, reset the eventfd (read)
//                              and waiting = 0;
//   writer, after the release: fence(seq_cst); if (waiting) eventfd_write().
// The two seq_cst fences make it impossible that the writer reads waiting == 0 *and* the reader's second
// scan misses the message: either the reader sees the message, or the writer sees the reader waiting
// and signals. A signal that arrives after the reader already woke leaves the counter non-zero; the
// next poll() then returns at once and the scan finds nothing new (a harmless spurious wake-up). Busy
// readers (the worker stepping its other split, the proxy handling a report) cost the writer no
// syscall; a sleeping one costs one eventfd_write, which wakes it without the synchronous hint. STOP
// is signalled unconditionally, so a worker that checked the STOP word just before it slept still wakes.
//
// Words are accessed through std::atomic_ref, which is lock-free for int64 and therefore address-free:
// it works across processes that map the same memory (the tensor is in torch's shared memory).
//
// ---- stalls ---------------------------------------------------------------------------------------
// The progress word in the header is the worker's heartbeat: it bumps it with every report and at every
// check between slow start-up steps (each env created, every few warm-up steps). The sampler knows from
// the sequence numbers alone whether the worker owes a report (a command slot's number is ahead of its
// report slot's). A worker that owes a report and whose progress word has not moved for the stall limit
// is stuck (an env call that never returns, a frozen process); an idle worker owes nothing and is never
// stuck. A heartbeat from a helper thread would be wrong here: it keeps beating while the env hangs.
//
// ---- start-up, death and errors ----------------------------------------------------------------------
// The lifeline is a connected socket pair; each process keeps one end and never writes to it, except
// the worker, once, with an error text just before it exits. A sampler thread that does nothing else
// polls the sampler's end (the proxy thread may be blocked waiting for a free trajectory block, and a
// death must still be noticed at once): readable data is the error text, a hang-up without data means
// the worker exited unexpectedly. The worker polls its end while it waits: a hang-up means the sampler
// is gone, which it treats like STOP.
//
// A worker that is still starting (a spawned interpreter importing torch takes seconds on a busy
// machine) cannot see STOP. The worker-state word settles who goes first with one compare-and-swap
// each: the worker attaches (kStarting -> kAttached) before it creates its envs; a stopping sampler
// abandons it (kStarting -> kAbandoned). If the sampler wins, the worker holds nothing yet and can be
// terminated at once (and would exit by itself on attaching); if the worker wins, it sees STOP as usual.

/// RAII owner of a file descriptor (closed on destruction; -1 means none).
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.release();
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  [[nodiscard]] int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset();

 private:
  int fd_ = -1;
};

/// The longest error text a worker sends through the lifeline: it fits one atomic socket write and one read.
inline constexpr std::size_t kMaxErrorReportBytes = 4000;

/// Values of the worker-state word (see "start-up" above).
enum class WorkerState : std::int64_t { kStarting = 0, kAttached = 1, kAbandoned = 2 };

/// Command kinds (sampler -> worker). kStop is never stored in a slot: `WorkerMailboxEnd::wait` returns
/// it when the STOP word is set or the sampler is gone.
enum class CommandKind : std::int64_t { kAssign = 1, kAct = 2, kStop = 3 };
/// Report kinds (worker -> sampler).
enum class ReportKind : std::int64_t { kReady = 1, kStepped = 2 };

/// Word offsets of the mailbox tensor (int64 words). Each slot starts on its own 64-byte cache line so
/// that the two processes do not write the same line.
///
///   header line:            [kStopWord, kWorkerStateWord, kWorkerWaitingWord, kProxyWaitingWord,
///                            kWorkerProgressWord]
///   per split s, command:   command_slot(s) + [kSeq, kKind, kBlock, kStep]
///   per split s, report:    report_slot(s) + [kSeq, kKind, kNumEpisodes, records...]
///   episode record i:       report_slot(s) + kRecords + i * kRecordWords + [kEnvIndex, kReturn, kLength]
///                           (kReturn holds the bits of a float64 raw return; at most block_rows records)
struct MailboxLayout {
  static constexpr std::int64_t kWordsPerLine = 8;
  static constexpr std::int64_t kStopWord = 0;
  static constexpr std::int64_t kWorkerStateWord = 1;
  static constexpr std::int64_t kWorkerWaitingWord = 2;  // the worker is (about to be) blocked in poll()
  static constexpr std::int64_t kProxyWaitingWord = 3;   // the sampler's proxy thread is, likewise
  static constexpr std::int64_t kWorkerProgressWord = 4;  // bumped by the worker as it makes progress ("stalls")
  // Both slots: the sequence number and the message kind.
  static constexpr std::int64_t kSeq = 0;
  static constexpr std::int64_t kKind = 1;
  // Command slot.
  static constexpr std::int64_t kBlock = 2;
  static constexpr std::int64_t kStep = 3;
  // Report slot.
  static constexpr std::int64_t kNumEpisodes = 2;
  static constexpr std::int64_t kRecords = 3;
  // Episode record.
  static constexpr std::int64_t kEnvIndex = 0;
  static constexpr std::int64_t kReturn = 1;
  static constexpr std::int64_t kLength = 2;
  static constexpr std::int64_t kRecordWords = 3;

  /// Throws std::invalid_argument unless num_splits >= 1 and block_rows >= 1.
  MailboxLayout(int num_splits, std::int64_t block_rows);

  [[nodiscard]] std::int64_t command_slot(int split) const { return kWordsPerLine + split * split_words_; }
  [[nodiscard]] std::int64_t report_slot(int split) const { return command_slot(split) + kWordsPerLine; }
  /// Size of the whole mailbox in int64 words.
  [[nodiscard]] std::int64_t words() const { return kWordsPerLine + num_splits * split_words_; }

  int num_splits;
  std::int64_t block_rows;

 private:
  std::int64_t split_words_;  // command line + report slot, rounded up to whole lines
};

/// One finished episode as reported by the worker.
struct EpisodeRecord {
  std::int64_t env_index;  // within the split
  double raw_return;
  std::int64_t length;
};

/// A report read from a slot.
struct WorkerReport {
  ReportKind kind;
  std::vector<EpisodeRecord> episodes;  // empty for kReady
};

/// A command read from a slot (or kStop).
struct WorkerCommand {
  CommandKind kind;
  int split;
  std::int64_t block;
  std::int64_t step;
};

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

/// What the sampler can see of a worker without talking to it (for the stall check).
struct WorkerActivity {
  std::int64_t progress = 0;  // the worker's progress word
  bool owes_report = false;   // some split has a command the worker has not reported on yet
  bool attached = false;      // the worker finished starting (see "start-up" above)
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

/// The worker process's end (bound to Python as pysf._C.WorkerMailbox). Single-threaded: the worker's
/// main loop calls it.
class WorkerMailboxEnd {
 public:
  /// Owns the three file descriptors: `commands_posted` (eventfd the sampler signals, see the eventcount
  /// above), `wake_sampler` (eventfd this end signals) and `lifeline` (the worker's end of the socket pair).
  WorkerMailboxEnd(MailboxWords words, UniqueFd commands_posted, UniqueFd wake_sampler, UniqueFd lifeline);

  /// Claims the mailbox before creating envs; false if the sampler abandoned this worker (exit at once).
  bool attach();
  /// Whether the worker must stop: the sampler asked it to, or is gone (its end of the lifeline closed).
  /// Call it between slow steps (env creation, warm-up): it also bumps the progress word, so the sampler
  /// sees a worker that is busy, not stuck ("stalls" above).
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
