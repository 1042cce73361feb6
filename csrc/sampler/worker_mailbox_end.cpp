#include "sampler/worker_mailbox_end.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <utility>

#include "sampler/mailbox_wakeup.h"

namespace pysf::sampler {

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
    // Nothing new: announce the wait, look once more (the eventcount), then sleep.
    announce_wait(words_, MailboxLayout::kWorkerWaitingWord);
    std::optional<WorkerCommand> command = take_command();
    bool sampler_alive = true;
    if (!command && !stop_word_set()) {
      sampler_alive = wait_for_eventfd_or_lifeline(commands_posted_.get(), lifeline_.get());
    }
    end_wait(words_, MailboxLayout::kWorkerWaitingWord);
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
  wake_if_waiting(words_, MailboxLayout::kProxyWaitingWord, wake_sampler_.get());
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
