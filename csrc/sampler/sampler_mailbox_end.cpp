#include "sampler/sampler_mailbox_end.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <stdexcept>
#include <utility>

#include "sampler/mailbox_wakeup.h"

namespace pysf::sampler {

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
  wake_if_waiting(words_, MailboxLayout::kWorkerWaitingWord, wake_worker_.get());
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
  announce_wait(words_, MailboxLayout::kProxyWaitingWord);
  if (!reports_pending()) {
    wait_until_readable(reports_posted_.get());
    drain_eventfd(reports_posted_.get());
  }
  end_wait(words_, MailboxLayout::kProxyWaitingWord);
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

bool abandon_if_starting(const at::Tensor& mailbox) {
  std::int64_t* words = checked_mailbox_words(mailbox, MailboxLayout::kWordsPerLine);
  std::int64_t expected = static_cast<std::int64_t>(WorkerState::kStarting);
  std::atomic_ref<std::int64_t>(words[MailboxLayout::kWorkerStateWord])
      .compare_exchange_strong(expected, static_cast<std::int64_t>(WorkerState::kAbandoned));
  return expected != static_cast<std::int64_t>(WorkerState::kAttached);
}

}  // namespace pysf::sampler
