#include "sampler/worker_mailbox.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace pysf::sampler {

namespace {

std::string errno_text(const char* what) { return std::string(what) + " failed: " + std::strerror(errno); }

/// eventfd_write: adds 1 to the counter and wakes a poller without a synchronous-wake hint.
void signal_eventfd(int fd) {
  while (::eventfd_write(fd, 1) != 0) {
    // EAGAIN would need 2^64-2 unread signals; anything but EINTR means the fd is unusable, and the
    // lifeline reports the real problem (a dead peer) on its own.
    if (errno != EINTR) return;
  }
}

/// Resets an eventfd's counter (non-blocking eventfds: a zero counter is not an error worth reporting).
void drain_eventfd(int fd) {
  eventfd_t ignored = 0;
  while (::eventfd_read(fd, &ignored) != 0 && errno == EINTR) {
  }
}

/// Sleeps in poll() until one of `fds` is readable (or hung up).
void wait_until_readable(pollfd* fds, nfds_t count) {
  while (::poll(fds, count, -1) < 0) {
    if (errno != EINTR) throw std::runtime_error(errno_text("poll"));
  }
}

/// Like wait_until_readable(fd) for at most `timeout_ms` (< 0: no limit); false on timeout.
bool readable_within(int fd, int timeout_ms) {
  pollfd poll_fd{fd, POLLIN, 0};
  for (;;) {
    const int ready = ::poll(&poll_fd, 1, timeout_ms);
    if (ready >= 0) return ready > 0;
    if (errno != EINTR) throw std::runtime_error(errno_text("poll"));
  }
}

void wait_until_readable(int fd) {
  pollfd poll_fd{fd, POLLIN, 0};
  wait_until_readable(&poll_fd, 1);
}

/// Sleeps until the eventfd or the lifeline is readable, then resets the eventfd. False when the
/// lifeline is readable (the peer wrote an error text or hung up).
bool wait_for_eventfd_or_lifeline(int eventfd, int lifeline) {
  pollfd fds[2] = {{eventfd, POLLIN, 0}, {lifeline, POLLIN, 0}};
  wait_until_readable(fds, 2);
  if (fds[1].revents != 0) return false;
  drain_eventfd(eventfd);
  return true;
}


/// The words of a mailbox tensor, validated for atomic access; at least `min_words` long.
std::int64_t* mailbox_data(const at::Tensor& tensor, std::int64_t min_words) {
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

}  // namespace

void UniqueFd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

MailboxLayout::MailboxLayout(int splits, std::int64_t rows) : num_splits(splits), block_rows(rows) {
  if (num_splits < 1 || block_rows < 1) {
    throw std::invalid_argument("a worker mailbox needs num_splits >= 1 and block_rows >= 1");
  }
  const std::int64_t report_words = kRecords + block_rows * kRecordWords;
  const std::int64_t report_lines = (report_words + kWordsPerLine - 1) / kWordsPerLine;
  split_words_ = (1 + report_lines) * kWordsPerLine;
}

MailboxWords::MailboxWords(at::Tensor tensor, MailboxLayout layout)
    : tensor_(std::move(tensor)), layout_(layout), words_(mailbox_data(tensor_, 0)) {
  if (tensor_.numel() != layout_.words()) {
    throw std::invalid_argument("the worker mailbox has " + std::to_string(tensor_.numel()) + " words, expected " +
                                std::to_string(layout_.words()) + " for " + std::to_string(layout_.num_splits) +
                                " splits of " + std::to_string(layout_.block_rows) + " envs");
  }
}

bool abandon_if_starting(const at::Tensor& mailbox) {
  std::int64_t* words = mailbox_data(mailbox, MailboxLayout::kWordsPerLine);
  std::int64_t expected = static_cast<std::int64_t>(WorkerState::kStarting);
  std::atomic_ref<std::int64_t>(words[MailboxLayout::kWorkerStateWord])
      .compare_exchange_strong(expected, static_cast<std::int64_t>(WorkerState::kAbandoned));
  return expected != static_cast<std::int64_t>(WorkerState::kAttached);
}

// ---- sampler end ------------------------------------------------------------------------------------

SamplerMailboxEnd::SamplerMailboxEnd(WorkerChannels channels, MailboxLayout layout)
    : words_(std::move(channels.mailbox), layout),
      wake_worker_(std::move(channels.wake_worker)),
      reports_posted_(std::move(channels.reports_posted)),
      lifeline_(std::move(channels.lifeline)),
      // A mailbox starts zeroed: no message yet. (Reading the words here instead would race with a peer
      // that posts before this end exists.)
      reports_seen_(static_cast<std::size_t>(layout.num_splits), 0) {}

void SamplerMailboxEnd::post_command(CommandKind kind, int split, std::int64_t block, std::int64_t step) {
  const std::int64_t slot = layout().command_slot(split);
  // This end is the slot's only writer, and by the alternation of commands and reports nobody else
  // writes it meanwhile, so the next sequence number follows from the word itself.
  const std::int64_t seq = words_.load(slot + MailboxLayout::kSeq, std::memory_order_relaxed) + 1;
  words_.store(slot + MailboxLayout::kKind, static_cast<std::int64_t>(kind), std::memory_order_relaxed);
  words_.store(slot + MailboxLayout::kBlock, block, std::memory_order_relaxed);
  words_.store(slot + MailboxLayout::kStep, step, std::memory_order_relaxed);
  words_.store(slot + MailboxLayout::kSeq, seq, std::memory_order_release);
  std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the worker's fence in wait()
  if (words_.load(MailboxLayout::kWorkerWaitingWord, std::memory_order_relaxed) != 0) {
    signal_eventfd(wake_worker_.get());
  }
}

void SamplerMailboxEnd::post_stop() {
  words_.store(MailboxLayout::kStopWord, 1, std::memory_order_seq_cst);
  signal_eventfd(wake_worker_.get());  // unconditionally: rare, and it must not depend on the waiting word
}

std::optional<WorkerReport> SamplerMailboxEnd::take_report(int split) {
  const std::int64_t slot = layout().report_slot(split);
  const std::int64_t seq = words_.load(slot + MailboxLayout::kSeq, std::memory_order_acquire);
  std::int64_t& seen = reports_seen_[static_cast<std::size_t>(split)];
  if (seq == seen) return std::nullopt;
  if (seq != seen + 1) {
    throw std::runtime_error("protocol error (split " + std::to_string(split) + " report " + std::to_string(seq) +
                             " after " + std::to_string(seen) + ")");
  }
  seen = seq;
  WorkerReport report{};
  const std::int64_t kind = words_.load(slot + MailboxLayout::kKind, std::memory_order_relaxed);
  if (kind == static_cast<std::int64_t>(ReportKind::kReady)) {
    report.kind = ReportKind::kReady;
    return report;
  }
  if (kind != static_cast<std::int64_t>(ReportKind::kStepped)) {
    throw std::runtime_error("protocol error (report kind " + std::to_string(kind) + ")");
  }
  report.kind = ReportKind::kStepped;
  const std::int64_t count = words_.load(slot + MailboxLayout::kNumEpisodes, std::memory_order_relaxed);
  if (count < 0 || count > layout().block_rows) {
    throw std::runtime_error("protocol error (" + std::to_string(count) + " finished episodes in a split of " +
                             std::to_string(layout().block_rows) + " envs)");
  }
  report.episodes.reserve(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t record = slot + MailboxLayout::kRecords + i * MailboxLayout::kRecordWords;
    const std::int64_t env_index = words_.load(record + MailboxLayout::kEnvIndex, std::memory_order_relaxed);
    if (env_index < 0 || env_index >= layout().block_rows) {
      throw std::runtime_error("protocol error (episode of env " + std::to_string(env_index) + ")");
    }
    report.episodes.push_back(EpisodeRecord{
        env_index, std::bit_cast<double>(words_.load(record + MailboxLayout::kReturn, std::memory_order_relaxed)),
        words_.load(record + MailboxLayout::kLength, std::memory_order_relaxed)});
  }
  return report;
}

bool SamplerMailboxEnd::reports_pending() const {
  for (int split = 0; split < layout().num_splits; ++split) {
    const std::int64_t seq = words_.load(layout().report_slot(split) + MailboxLayout::kSeq, std::memory_order_relaxed);
    if (seq != reports_seen_[static_cast<std::size_t>(split)]) return true;
  }
  return false;
}

void SamplerMailboxEnd::wait_for_reports() {
  words_.store(MailboxLayout::kProxyWaitingWord, 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the worker's fence in post_report()
  if (!reports_pending()) {
    wait_until_readable(reports_posted_.get());
    drain_eventfd(reports_posted_.get());
  }
  words_.store(MailboxLayout::kProxyWaitingWord, 0, std::memory_order_relaxed);
}

void SamplerMailboxEnd::wake_proxy() { signal_eventfd(reports_posted_.get()); }

bool SamplerMailboxEnd::wait_for_lifeline(double timeout_seconds) {
  const int timeout_ms = timeout_seconds < 0 ? -1 : static_cast<int>(std::min(timeout_seconds * 1000.0, 2.0e9));
  return readable_within(lifeline_.get(), timeout_ms);
}

WorkerActivity SamplerMailboxEnd::activity() const {
  WorkerActivity activity;
  activity.progress = words_.load(MailboxLayout::kWorkerProgressWord, std::memory_order_relaxed);
  activity.attached = words_.load(MailboxLayout::kWorkerStateWord, std::memory_order_relaxed) ==
                      static_cast<std::int64_t>(WorkerState::kAttached);
  for (int split = 0; split < layout().num_splits && !activity.owes_report; ++split) {
    // Commands and reports alternate and both counts start at 0: equal counts mean nothing is owed.
    const std::int64_t commands = words_.load(layout().command_slot(split) + MailboxLayout::kSeq, std::memory_order_relaxed);
    const std::int64_t reports = words_.load(layout().report_slot(split) + MailboxLayout::kSeq, std::memory_order_relaxed);
    activity.owes_report = commands != reports;
  }
  return activity;
}

void SamplerMailboxEnd::hang_up_lifeline() { ::shutdown(lifeline_.get(), SHUT_RDWR); }

std::optional<std::string> SamplerMailboxEnd::read_lifeline() {
  std::string text(kMaxErrorReportBytes, '\0');
  ssize_t got = -1;
  do {
    // The worker writes its error text with one send() just before it exits and nothing else ever, so
    // one read gets all of it (MSG_DONTWAIT: a hang-up without data must not block).
    got = ::recv(lifeline_.get(), text.data(), text.size(), MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  if (got <= 0) return std::nullopt;
  text.resize(static_cast<std::size_t>(got));
  return text;
}

// ---- worker end -------------------------------------------------------------------------------------

WorkerMailboxEnd::WorkerMailboxEnd(MailboxWords words, UniqueFd commands_posted, UniqueFd wake_sampler,
                                   UniqueFd lifeline)
    : words_(std::move(words)),
      commands_posted_(std::move(commands_posted)),
      wake_sampler_(std::move(wake_sampler)),
      lifeline_(std::move(lifeline)),
      // A mailbox starts zeroed; the sampler may have posted commands before this process got here.
      commands_seen_(static_cast<std::size_t>(words_.layout().num_splits), 0) {}

bool WorkerMailboxEnd::attach() {
  const std::int64_t previous =
      words_.compare_exchange(MailboxLayout::kWorkerStateWord, static_cast<std::int64_t>(WorkerState::kStarting),
                              static_cast<std::int64_t>(WorkerState::kAttached));
  return previous != static_cast<std::int64_t>(WorkerState::kAbandoned);
}

bool WorkerMailboxEnd::stop_word_set() const {
  return words_.load(MailboxLayout::kStopWord, std::memory_order_acquire) != 0;
}

void WorkerMailboxEnd::note_progress() {
  // Only this end writes the word: a relaxed increment is enough (the sampler only compares values).
  words_.store(MailboxLayout::kWorkerProgressWord,
               words_.load(MailboxLayout::kWorkerProgressWord, std::memory_order_relaxed) + 1,
               std::memory_order_relaxed);
}

bool WorkerMailboxEnd::stop_requested() {
  note_progress();
  // The sampler never writes the lifeline: readable means it hung up, i.e. the sampler is gone.
  return stop_word_set() || readable_within(lifeline_.get(), 0);
}

std::optional<WorkerCommand> WorkerMailboxEnd::take_command() {
  const int num_splits = layout().num_splits;
  for (int n = 0; n < num_splits; ++n) {
    const int split = (next_split_ + n) % num_splits;
    const std::int64_t slot = layout().command_slot(split);
    const std::int64_t seq = words_.load(slot + MailboxLayout::kSeq, std::memory_order_acquire);
    std::int64_t& seen = commands_seen_[static_cast<std::size_t>(split)];
    if (seq == seen) continue;
    seen = seq;
    next_split_ = (split + 1) % num_splits;
    const std::int64_t kind = words_.load(slot + MailboxLayout::kKind, std::memory_order_relaxed);
    if (kind != static_cast<std::int64_t>(CommandKind::kAssign) &&
        kind != static_cast<std::int64_t>(CommandKind::kAct)) {
      throw std::runtime_error("protocol error (command kind " + std::to_string(kind) + ")");
    }
    return WorkerCommand{static_cast<CommandKind>(kind), split,
                         words_.load(slot + MailboxLayout::kBlock, std::memory_order_relaxed),
                         words_.load(slot + MailboxLayout::kStep, std::memory_order_relaxed)};
  }
  return std::nullopt;
}

WorkerCommand WorkerMailboxEnd::wait() {
  const WorkerCommand stop{CommandKind::kStop, -1, 0, 0};
  for (;;) {
    if (stop_word_set()) return stop;
    if (auto command = take_command()) return command.value();
    // Nothing new: announce the wait, look once more (eventcount, see the header), then sleep.
    words_.store(MailboxLayout::kWorkerWaitingWord, 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the fence in post_command()
    std::optional<WorkerCommand> command = take_command();
    bool sampler_alive = true;
    if (!command && !stop_word_set()) {
      sampler_alive = wait_for_eventfd_or_lifeline(commands_posted_.get(), lifeline_.get());
    }
    words_.store(MailboxLayout::kWorkerWaitingWord, 0, std::memory_order_relaxed);
    if (command) return command.value();
    // The sampler never writes the lifeline: readable means it hung up, i.e. the sampler is gone.
    if (!sampler_alive) return stop;
  }
}

void WorkerMailboxEnd::post_report(ReportKind kind, int split, std::int64_t num_episodes) {
  if (split < 0 || split >= layout().num_splits) throw std::out_of_range("split " + std::to_string(split));
  if (num_episodes < 0 || num_episodes > layout().block_rows) {
    throw std::out_of_range("num_episodes " + std::to_string(num_episodes));
  }
  const std::int64_t slot = layout().report_slot(split);
  const std::int64_t seq = words_.load(slot + MailboxLayout::kSeq, std::memory_order_relaxed) + 1;
  words_.store(slot + MailboxLayout::kKind, static_cast<std::int64_t>(kind), std::memory_order_relaxed);
  words_.store(slot + MailboxLayout::kNumEpisodes, num_episodes, std::memory_order_relaxed);
  // Release: the records, and the observations/rewards the caller wrote into the trajectory buffers
  // (plain stores earlier on this thread, by numpy), become visible no later than the sequence number.
  words_.store(slot + MailboxLayout::kSeq, seq, std::memory_order_release);
  note_progress();
  std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the fence in wait_for_reports()
  if (words_.load(MailboxLayout::kProxyWaitingWord, std::memory_order_relaxed) != 0) {
    signal_eventfd(wake_sampler_.get());
  }
}

at::Tensor WorkerMailboxEnd::episode_records(int split) const {
  if (split < 0 || split >= layout().num_splits) throw std::out_of_range("split " + std::to_string(split));
  const std::int64_t first = layout().report_slot(split) + MailboxLayout::kRecords;
  return words_.tensor()
      .narrow(0, first, layout().block_rows * MailboxLayout::kRecordWords)
      .view({layout().block_rows, MailboxLayout::kRecordWords});
}

void WorkerMailboxEnd::report_error(const std::string& text) const {
  const std::size_t size = std::min(text.size(), kMaxErrorReportBytes);
  // MSG_NOSIGNAL: a sampler that is already gone must not kill us with SIGPIPE; best effort otherwise.
  while (::send(lifeline_.get(), text.data(), size, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

}  // namespace pysf::sampler
