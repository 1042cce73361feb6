// The mailbox's wire format (worker_mailbox.h describes the protocol): where each word lives, the values
// its kind and state words take, the messages decoded from it, and the lifeline's error-text limit.
// Both processes depend on these numbers; pysf/algo/sampling/protocol.py reads them through pysf._C.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pysf::sampler {

/// The longest error text a worker sends through the lifeline: it fits one atomic socket write and one read.
inline constexpr std::size_t kMaxErrorReportBytes = 4000;

/// Values of the worker-state word (worker_mailbox.h, "start-up").
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

}  // namespace pysf::sampler
