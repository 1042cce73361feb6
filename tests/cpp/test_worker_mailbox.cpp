// The env-worker mailbox (csrc/sampler/worker_mailbox.h) in C++ only, so that it runs under ASan and
// TSan: both ends of the channel driven by scripted "worker" and "sampler" loops, from threads of this
// process and from a forked child process (the mailbox then lives in MAP_SHARED memory, as in torch's
// shared memory for real workers). Every message encodes its split and step, and both sides check that
// each one arrives exactly once, in order, with its payload, including plain (non-atomic) data written
// before a message and read after it, which is what the release/acquire pairs must order. A lost
// message or a lost wake-up shows as a deadlock, which a watchdog turns into a failure (and unsticks
// the threads so that they can be joined); a duplicated one as a step or payload mismatch.
#include <ATen/ATen.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "check.h"
#include "thread_checks.h"
#include "sampler/worker_mailbox.h"

using pysf::test::eventually;
using pysf::test::expect_sleeping;
using pysf::test::Watchdog;

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using pysf::sampler::abandon_if_starting;
using pysf::sampler::CommandKind;
using pysf::sampler::MailboxLayout;
using pysf::sampler::MailboxWords;
using pysf::sampler::ReportKind;
using pysf::sampler::SamplerMailboxEnd;
using pysf::sampler::UniqueFd;
using pysf::sampler::WorkerChannels;
using pysf::sampler::WorkerCommand;
using pysf::sampler::WorkerMailboxEnd;
using pysf::sampler::WorkerReport;
using pysf::sampler::WorkerState;

// How long a woken waiter may take to return. Generous: the machine is shared and TSan is slow; a
// missed wake-up never returns at all.
constexpr auto kWakeBound = 2s;

std::string errno_text(const char* what) { return std::string(what) + " failed: " + std::strerror(errno); }

// ---- plumbing -----------------------------------------------------------------------------------------

UniqueFd make_eventfd() {
  const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);  // as pysf/algo/sampling/protocol.py makes them
  if (fd < 0) throw std::runtime_error(errno_text("eventfd"));
  return UniqueFd(fd);
}

UniqueFd dup_fd(int fd) {
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) throw std::runtime_error(errno_text("dup"));
  return UniqueFd(copy);
}

/// Zeroed int64 words in MAP_SHARED anonymous memory (shared with a forked child), unmapped with the tensor.
at::Tensor shared_words(std::int64_t words) {
  const auto bytes = static_cast<std::size_t>(words) * sizeof(std::int64_t);
  void* memory = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) throw std::runtime_error(errno_text("mmap"));
  return at::from_blob(
      memory, {words}, [bytes](void* data) { ::munmap(data, bytes); }, at::TensorOptions().dtype(at::kLong));
}

/// One worker's channel before either end exists, wired as pysf/algo/sampling/sampler.py wires it: two
/// eventfds (each end owns a descriptor of each), a socket pair for the lifeline, a zeroed mailbox.
struct ChannelParts {
  ChannelParts(int num_splits, std::int64_t block_rows)
      : layout(num_splits, block_rows), mailbox(shared_words(layout.words())) {
    sampler.mailbox = mailbox;
    sampler.wake_worker = make_eventfd();
    sampler.reports_posted = make_eventfd();
    worker_commands_posted = dup_fd(sampler.wake_worker.get());
    worker_wake_sampler = dup_fd(sampler.reports_posted.get());
    int ends[2] = {-1, -1};
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) throw std::runtime_error(errno_text("socketpair"));
    sampler.lifeline = UniqueFd(ends[0]);
    worker_lifeline = UniqueFd(ends[1]);
  }

  std::unique_ptr<SamplerMailboxEnd> make_sampler_end() {
    return std::make_unique<SamplerMailboxEnd>(std::move(sampler), layout);
  }
  std::unique_ptr<WorkerMailboxEnd> make_worker_end() {
    return std::make_unique<WorkerMailboxEnd>(MailboxWords(mailbox, layout), std::move(worker_commands_posted),
                                              std::move(worker_wake_sampler), std::move(worker_lifeline));
  }
  /// Closes the sampler's descriptors (a forked child must not keep them: it would not see the sampler go).
  void close_sampler_fds() {
    sampler.wake_worker.reset();
    sampler.reports_posted.reset();
    sampler.lifeline.reset();
  }
  /// Closes the worker's descriptors (the parent of a forked worker: a dead child must read as a hang-up).
  void close_worker_fds() {
    worker_commands_posted.reset();
    worker_wake_sampler.reset();
    worker_lifeline.reset();
  }

  MailboxLayout layout;
  at::Tensor mailbox;
  WorkerChannels sampler;
  UniqueFd worker_commands_posted;
  UniqueFd worker_wake_sampler;
  UniqueFd worker_lifeline;
};

/// Both ends in this process, plus spare descriptors of the two eventfds to observe their counters and a
/// view of the words (to see the "waiting" words and to forge malformed messages).
struct Channel {
  Channel(int num_splits, std::int64_t block_rows) : parts(num_splits, block_rows) {
    wake_worker_probe = dup_fd(parts.sampler.wake_worker.get());
    reports_posted_probe = dup_fd(parts.sampler.reports_posted.get());
    sampler = parts.make_sampler_end();
    worker = parts.make_worker_end();
  }
  [[nodiscard]] std::int64_t word(std::int64_t index) const {
    return MailboxWords(parts.mailbox, parts.layout).load(index, std::memory_order_seq_cst);
  }
  void set_word(std::int64_t index, std::int64_t value) const {
    MailboxWords(parts.mailbox, parts.layout).store(index, value, std::memory_order_seq_cst);
  }
  /// STOP without the sampler end (which a test may have destroyed): the word and a signal through the
  /// spare descriptors. For watchdogs: wakes whatever waits on this channel.
  void force_wake() const {
    set_word(MailboxLayout::kStopWord, 1);
    ::eventfd_write(wake_worker_probe.get(), 1);
    ::eventfd_write(reports_posted_probe.get(), 1);
  }

  ChannelParts parts;
  UniqueFd wake_worker_probe;
  UniqueFd reports_posted_probe;
  std::unique_ptr<SamplerMailboxEnd> sampler;
  std::unique_ptr<WorkerMailboxEnd> worker;
};

/// The eventfd's counter (and resets it): how many signals arrived since the last read.
std::uint64_t take_signals(int eventfd) {
  eventfd_t count = 0;
  if (::eventfd_read(eventfd, &count) != 0) {
    if (errno == EAGAIN) return 0;
    throw std::runtime_error(errno_text("eventfd_read"));
  }
  return count;
}


/// Minimal blocking queue (the "inference thread" that posts commands after the proxy's request).
class CommandQueue {
 public:
  void push(int split, std::int64_t step) {
    {
      const std::lock_guard lock(mutex_);
      items_.emplace_back(split, step);
    }
    cv_.notify_one();
  }
  void close() {
    {
      const std::lock_guard lock(mutex_);
      closed_ = true;
    }
    cv_.notify_all();
  }
  std::optional<std::pair<int, std::int64_t>> pop() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return closed_ || !items_.empty(); });
    if (items_.empty()) return std::nullopt;
    auto item = items_.front();
    items_.pop_front();
    return item;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::pair<int, std::int64_t>> items_;
  bool closed_ = false;
};

// ---- the scripted protocol ----------------------------------------------------------------------------
// Per split s: ASSIGN (step 0), READY, then for t = 1..steps: ACT t, STEPPED t. Every field is a function
// of (s, t), and so are the plain payload words each side writes before posting ("actions" written by
// the sampler before a command, "observations" by the worker before a report): both are in
// `payload` (2 words per split; shared memory when the worker is a child process).

std::int64_t command_block(int split, std::int64_t step) { return 1000 * split + step % 17 + 3; }
std::int64_t action_word(int split, std::int64_t step) { return step * 7 + split + 1; }
std::int64_t observation_word(int split, std::int64_t step) { return step * 11 + split + 5; }
std::int64_t num_episodes(int split, std::int64_t step, std::int64_t rows) {
  return step == 0 ? 0 : (step * 5 + split) % (rows + 1);
}
std::int64_t episode_env(int split, std::int64_t step, std::int64_t i, std::int64_t rows) {
  return (step + i + split) % rows;
}
double episode_return(int split, std::int64_t step, std::int64_t i) {
  return (step % 2 == 0 ? 1.0 : -1.0) * (static_cast<double>(step) + 0.25 * static_cast<double>(i) + 1e-3 * split);
}
std::int64_t episode_length(int split, std::int64_t step, std::int64_t i) { return step * 10 + i + split; }

std::int64_t& action_slot(std::int64_t* payload, int split) { return payload[2 * split]; }
std::int64_t& observation_slot(std::int64_t* payload, int split) { return payload[2 * split + 1]; }

/// The worker's main loop: serves commands until kStop. Returns "" or what went wrong. No EXPECT here: it
/// also runs in a forked child.
std::string run_worker(WorkerMailboxEnd& worker, std::int64_t steps, std::int64_t* payload) {
  const MailboxLayout& layout = worker.layout();
  const std::int64_t rows = layout.block_rows;
  std::vector<std::int64_t*> records;
  for (int s = 0; s < layout.num_splits; ++s) records.push_back(worker.episode_records(s).data_ptr<std::int64_t>());
  std::vector<std::int64_t> next_step(static_cast<std::size_t>(layout.num_splits), 0);
  for (;;) {
    const WorkerCommand command = worker.wait();
    if (command.kind == CommandKind::kStop) break;
    if (command.split < 0 || command.split >= layout.num_splits) {
      return "command for split " + std::to_string(command.split);
    }
    const int s = command.split;
    const std::int64_t t = next_step[static_cast<std::size_t>(s)]++;
    const std::string where = "split " + std::to_string(s) + " step " + std::to_string(t) + ": ";
    if (t > steps) return where + "a command after the last one (duplicated?)";
    const CommandKind expected_kind = t == 0 ? CommandKind::kAssign : CommandKind::kAct;
    if (command.kind != expected_kind || command.step != t || command.block != command_block(s, t)) {
      return where + "got kind " + std::to_string(static_cast<int>(command.kind)) + " step " +
             std::to_string(command.step) + " block " + std::to_string(command.block) + " (lost, duplicated or torn)";
    }
    if (t > 0 && action_slot(payload, s) != action_word(s, t)) return where + "the actions written before ACT are not visible";
    // Env stepping: observations (plain stores, as numpy's), finished episodes, then the report.
    observation_slot(payload, s) = observation_word(s, t);
    const std::int64_t n = num_episodes(s, t, rows);
    for (std::int64_t i = 0; i < n; ++i) {
      std::int64_t* record = records[static_cast<std::size_t>(s)] + i * MailboxLayout::kRecordWords;
      record[MailboxLayout::kEnvIndex] = episode_env(s, t, i, rows);
      record[MailboxLayout::kReturn] = std::bit_cast<std::int64_t>(episode_return(s, t, i));
      record[MailboxLayout::kLength] = episode_length(s, t, i);
    }
    worker.post_report(t == 0 ? ReportKind::kReady : ReportKind::kStepped, s, n);
  }
  for (int s = 0; s < layout.num_splits; ++s) {
    if (next_step[static_cast<std::size_t>(s)] != steps + 1) {
      return "split " + std::to_string(s) + " got " + std::to_string(next_step[static_cast<std::size_t>(s)]) +
             " commands before STOP, expected " + std::to_string(steps + 1);
    }
  }
  return "";
}

/// Posts the command of (split, step) after writing its actions; from the proxy or an inference thread.
void post_scripted_command(SamplerMailboxEnd& sampler, std::int64_t* payload, int split, std::int64_t step) {
  if (step > 0) action_slot(payload, split) = action_word(split, step);
  sampler.post_command(step == 0 ? CommandKind::kAssign : CommandKind::kAct, split, command_block(split, step), step);
}

/// The sampler's proxy loop: takes the reports, checks them, asks `post` for the next command, until every
/// split reported `steps` times after READY (or `abort`). Returns "" or what went wrong.
std::string run_proxy(SamplerMailboxEnd& sampler, std::int64_t steps, std::int64_t* payload,
                      const std::function<void(int, std::int64_t)>& post, const std::atomic<bool>& abort) {
  const MailboxLayout& layout = sampler.layout();
  const std::int64_t rows = layout.block_rows;
  std::vector<std::int64_t> next_report(static_cast<std::size_t>(layout.num_splits), 0);
  for (int s = 0; s < layout.num_splits; ++s) post(s, 0);
  int done = 0;
  while (done < layout.num_splits) {
    for (int s = 0; s < layout.num_splits; ++s) {
      std::optional<WorkerReport> report = sampler.take_report(s);
      if (!report) continue;
      const std::int64_t t = next_report[static_cast<std::size_t>(s)]++;
      const std::string where = "split " + std::to_string(s) + " report " + std::to_string(t) + ": ";
      if (t > steps) return where + "a report after the last one (duplicated?)";
      const ReportKind expected_kind = t == 0 ? ReportKind::kReady : ReportKind::kStepped;
      if (report->kind != expected_kind) return where + "wrong kind";
      if (observation_slot(payload, s) != observation_word(s, t)) return where + "observations not visible (or stale)";
      const std::int64_t n = num_episodes(s, t, rows);
      if (static_cast<std::int64_t>(report->episodes.size()) != n) {
        return where + std::to_string(report->episodes.size()) + " episodes, expected " + std::to_string(n);
      }
      for (std::int64_t i = 0; i < n; ++i) {
        const auto& episode = report->episodes[static_cast<std::size_t>(i)];
        if (episode.env_index != episode_env(s, t, i, rows) || episode.raw_return != episode_return(s, t, i) ||
            episode.length != episode_length(s, t, i)) {
          return where + "episode record " + std::to_string(i) + " differs";
        }
      }
      if (t < steps) {
        post(s, t + 1);
      } else {
        ++done;
      }
    }
    if (done == layout.num_splits) break;
    if (abort.load()) return "aborted";
    sampler.wait_for_reports();
  }
  // Every split got its last command: a report beyond the last one (duplicated) shows here if already in.
  for (int s = 0; s < layout.num_splits; ++s) {
    if (sampler.take_report(s)) return "split " + std::to_string(s) + ": a report after the last one";
  }
  return "";
}

/// One worker thread and one proxy thread over `channel`; `post_from_other_thread` routes the commands
/// through an "inference" thread, as the real sampler does. A side that fails, or the watchdog, aborts
/// the other so that every thread can be joined.
class RoundTrip {
 public:
  RoundTrip(Channel& channel, std::int64_t steps, bool post_from_other_thread, std::chrono::milliseconds limit)
      : channel_(channel),
        steps_(steps),
        payload_(2 * static_cast<std::size_t>(channel.parts.layout.num_splits), -1),
        watchdog_(limit, "a round trip (a lost message or wake-up?)", [this] { abort(); }) {
    try {
      start(post_from_other_thread);
    } catch (...) {  // a thread that failed to start: join the ones that did
      join_after_abort();
      throw;
    }
  }
  RoundTrip(const RoundTrip&) = delete;
  RoundTrip& operator=(const RoundTrip&) = delete;

  /// Joins the proxy (every report is in), then stops and joins the worker; checks both scripts.
  void finish() {
    proxy_.join();
    if (poster_.joinable()) poster_.join();
    channel_.sampler->post_stop();  // only now: STOP wins over commands the worker has not taken yet
    worker_.join();
    EXPECT_MSG(proxy_error_.empty(), "sampler side: " + proxy_error_);
    EXPECT_MSG(worker_error_.empty(), "worker side: " + worker_error_);
  }

  // Only has threads to join when finish() was not reached (a test threw).
  ~RoundTrip() { join_after_abort(); }

 private:
  void start(bool post_from_other_thread) {
    SamplerMailboxEnd& sampler = *channel_.sampler;
    std::int64_t* payload = payload_.data();
    worker_ = std::thread([this, payload] {
      worker_error_ = guarded([&] { return run_worker(*channel_.worker, steps_, payload); });
      if (!worker_error_.empty()) abort();
    });
    if (post_from_other_thread) {
      poster_ = std::thread([this, &sampler, payload] {
        while (auto item = queue_.pop()) post_scripted_command(sampler, payload, item->first, item->second);
      });
    }
    proxy_ = std::thread([this, &sampler, payload, post_from_other_thread] {
      proxy_error_ = guarded([&] {
        if (post_from_other_thread) {
          return run_proxy(sampler, steps_, payload, [this](int s, std::int64_t t) { queue_.push(s, t); }, abort_);
        }
        return run_proxy(
            sampler, steps_, payload,
            [&sampler, payload](int s, std::int64_t t) { post_scripted_command(sampler, payload, s, t); }, abort_);
      });
      queue_.close();
    });
  }

  /// A script's result, or the exception it threw (e.g. a protocol error), as text.
  template <typename Script>
  static std::string guarded(Script script) {
    try {
      return script();
    } catch (const std::exception& error) {
      return std::string("exception: ") + error.what();
    }
  }

  void join_after_abort() {
    if (proxy_.joinable() || worker_.joinable() || poster_.joinable()) {
      abort();
      for (std::thread* thread : {&proxy_, &poster_, &worker_}) {
        if (thread->joinable()) thread->join();
      }
    }
  }

  /// Unsticks every thread (thread-safe, idempotent).
  void abort() {
    abort_.store(true);
    queue_.close();
    channel_.force_wake();  // not through the sampler end: that is what may be broken
  }

  Channel& channel_;
  std::int64_t steps_;
  std::vector<std::int64_t> payload_;
  CommandQueue queue_;
  std::atomic<bool> abort_{false};
  std::string worker_error_;
  std::string proxy_error_;
  Watchdog watchdog_;  // outlives the joins below (members are destroyed after the destructor's body)
  std::thread worker_;
  std::thread poster_;
  std::thread proxy_;
};

/// A forked child; killed and reaped on destruction if still there.
class ChildProcess {
 public:
  /// Runs `body` in a child that exits with its return value (never returns into the test harness).
  explicit ChildProcess(const std::function<int()>& body) {
    std::fflush(stdout);
    std::fflush(stderr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error(errno_text("fork"));
    if (pid_ == 0) {
      int code = 99;
      try {
        code = body();
      } catch (...) {
        code = 98;
      }
      ::_exit(code);  // no destructors, atexit handlers or leak checks of the parent's state
    }
  }
  ~ChildProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }

  /// The child's wait status once it exited, or nullopt if it is still running after `limit`
  /// (sleeps in poll() on a pidfd; no spinning).
  std::optional<int> wait_for_exit(std::chrono::milliseconds limit) {
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd >= 0) {
      const UniqueFd owned(pidfd);
      pollfd fd{pidfd, POLLIN, 0};
      int ready = -1;
      do {
        ready = ::poll(&fd, 1, static_cast<int>(limit.count()));
      } while (ready < 0 && errno == EINTR);
      if (ready == 0) return std::nullopt;
    } else if (!eventually([this] { return exited(); }, limit)) {  // kernels without pidfd_open
      return std::nullopt;
    }
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) throw std::runtime_error(errno_text("waitpid"));
    pid_ = -1;
    return status;
  }

 private:
  [[nodiscard]] bool exited() const {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid_;
  }

  pid_t pid_ = -1;
};

std::string describe_status(const std::optional<int>& status) {
  if (!status) return "still running";
  if (WIFEXITED(*status)) return "exit " + std::to_string(WEXITSTATUS(*status));
  if (WIFSIGNALED(*status)) return "signal " + std::to_string(WTERMSIG(*status));
  return "status " + std::to_string(*status);
}

/// A thread blocked in wait_for_lifeline(); records when it returned and what the lifeline held.
class LifelineWatcher {
 public:
  /// `on_wake` runs on the watcher thread when the lifeline became readable.
  explicit LifelineWatcher(SamplerMailboxEnd& sampler, std::function<void()> on_wake = {})
      : thread_([this, &sampler, on_wake = std::move(on_wake)] {
          sampler.wait_for_lifeline();
          text_ = sampler.read_lifeline();
          woke_at_ = Clock::now();
          returned_.store(true);
          if (on_wake) on_wake();
        }) {}
  ~LifelineWatcher() {
    if (thread_.joinable()) thread_.join();
  }
  LifelineWatcher(const LifelineWatcher&) = delete;
  LifelineWatcher& operator=(const LifelineWatcher&) = delete;

  void join() { thread_.join(); }
  std::thread::native_handle_type native_handle() { return thread_.native_handle(); }
  [[nodiscard]] const std::atomic<bool>& returned() const { return returned_; }
  [[nodiscard]] Clock::time_point woke_at() const { return woke_at_; }  // after join()
  [[nodiscard]] const std::optional<std::string>& text() const { return text_; }  // after join()

 private:
  std::atomic<bool> returned_{false};
  Clock::time_point woke_at_;
  std::optional<std::string> text_;
  std::thread thread_;  // last
};

// ---- layout and single-threaded protocol ----------------------------------------------------------------

TEST_CASE(layout_puts_every_slot_on_its_own_cache_lines) {
  for (int splits : {1, 2, 5}) {
    for (std::int64_t rows : {1, 2, 3, 7, 64}) {
      const MailboxLayout layout(splits, rows);
      EXPECT(layout.num_splits == splits && layout.block_rows == rows);
      std::int64_t expected_start = MailboxLayout::kWordsPerLine;  // after the header line
      for (int s = 0; s < splits; ++s) {
        EXPECT(layout.command_slot(s) == expected_start);
        EXPECT(layout.command_slot(s) % MailboxLayout::kWordsPerLine == 0);
        EXPECT(layout.report_slot(s) == layout.command_slot(s) + MailboxLayout::kWordsPerLine);
        // The report slot, with its block_rows records, ends before the next split's command line.
        const std::int64_t report_end =
            layout.report_slot(s) + MailboxLayout::kRecords + rows * MailboxLayout::kRecordWords;
        const std::int64_t next = s + 1 < splits ? layout.command_slot(s + 1) : layout.words();
        EXPECT(report_end <= next && next - report_end < MailboxLayout::kWordsPerLine);
        expected_start = next;
      }
      EXPECT(layout.words() == expected_start);
    }
  }
  EXPECT_THROWS(MailboxLayout(0, 4), std::invalid_argument, "num_splits >= 1");
  EXPECT_THROWS(MailboxLayout(2, 0), std::invalid_argument, "block_rows >= 1");
}

TEST_CASE(mailbox_words_reject_tensors_that_do_not_fit) {
  const MailboxLayout layout(2, 3);
  EXPECT_THROWS(MailboxWords(at::zeros({layout.words() + 1}, at::kLong), layout), std::invalid_argument, "expected");
  EXPECT_THROWS(MailboxWords(at::zeros({layout.words()}, at::kInt), layout), std::invalid_argument, "int64");
  EXPECT_THROWS(MailboxWords(at::zeros({1, layout.words()}, at::kLong), layout), std::invalid_argument, "1-D");
  EXPECT_THROWS(MailboxWords(at::zeros({2 * layout.words()}, at::kLong).slice(0, 0, 2 * layout.words(), 2), layout),
                std::invalid_argument, "contiguous");
  EXPECT_THROWS(MailboxWords(at::Tensor(), layout), std::invalid_argument, "int64");
  EXPECT_THROWS(abandon_if_starting(at::zeros({3}, at::kLong)), std::invalid_argument, "too small");
  const MailboxWords words(at::zeros({layout.words()}, at::kLong), layout);
  EXPECT(words.layout().words() == layout.words());
}

TEST_CASE(commands_and_reports_round_trip_in_one_thread) {
  Channel channel(2, 3);
  SamplerMailboxEnd& sampler = *channel.sampler;
  WorkerMailboxEnd& worker = *channel.worker;
  EXPECT(!sampler.take_report(0) && !sampler.take_report(1));
  EXPECT(!worker.stop_requested());

  // Posted in reverse order, served round-robin from split 0.
  sampler.post_command(CommandKind::kAssign, 1, 11, 0);
  sampler.post_command(CommandKind::kAssign, 0, 10, 0);
  WorkerCommand first = worker.wait();
  WorkerCommand second = worker.wait();
  EXPECT(first.kind == CommandKind::kAssign && first.split == 0 && first.block == 10 && first.step == 0);
  EXPECT(second.kind == CommandKind::kAssign && second.split == 1 && second.block == 11 && second.step == 0);
  // Round-robin: a split with a new command does not starve the next one (the scan resumes after the
  // split served last).
  sampler.post_command(CommandKind::kAct, 0, 10, 1);
  EXPECT(worker.wait().split == 0);
  sampler.post_command(CommandKind::kAct, 1, 11, 1);
  sampler.post_command(CommandKind::kAct, 0, 10, 2);
  EXPECT(worker.wait().split == 1);
  const WorkerCommand third = worker.wait();
  EXPECT(third.split == 0 && third.step == 2);

  worker.post_report(ReportKind::kReady, 1, 0);
  EXPECT(!sampler.take_report(0));
  std::optional<WorkerReport> ready = sampler.take_report(1);
  EXPECT(ready && ready->kind == ReportKind::kReady && ready->episodes.empty());
  EXPECT(!sampler.take_report(1));  // taken once

  // Episode records: written through the view, read back exactly (a float64 return travels as its bits).
  at::Tensor records = worker.episode_records(0);
  EXPECT(records.dim() == 2 && records.size(0) == 3 && records.size(1) == MailboxLayout::kRecordWords);
  EXPECT(records.is_contiguous());
  std::int64_t* record_words = records.data_ptr<std::int64_t>();
  EXPECT(record_words ==
         channel.parts.mailbox.data_ptr<std::int64_t>() + channel.parts.layout.report_slot(0) + MailboxLayout::kRecords);
  const double returns[3] = {-1.5, 1e300, 0.1};
  for (std::int64_t i = 0; i < 3; ++i) {
    std::int64_t* record = record_words + i * MailboxLayout::kRecordWords;
    record[MailboxLayout::kEnvIndex] = 2 - i;
    record[MailboxLayout::kReturn] = std::bit_cast<std::int64_t>(returns[i]);
    record[MailboxLayout::kLength] = 100 + i;
  }
  worker.post_report(ReportKind::kStepped, 0, 3);
  std::optional<WorkerReport> stepped = sampler.take_report(0);
  EXPECT(stepped && stepped->kind == ReportKind::kStepped && stepped->episodes.size() == 3);
  if (stepped && stepped->episodes.size() == 3) {
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT(stepped->episodes[i].env_index == 2 - static_cast<std::int64_t>(i));
      EXPECT(stepped->episodes[i].raw_return == returns[i]);
      EXPECT(stepped->episodes[i].length == 100 + static_cast<std::int64_t>(i));
    }
  }
  worker.post_report(ReportKind::kStepped, 0, 0);  // no finished episode
  stepped = sampler.take_report(0);
  EXPECT(stepped && stepped->kind == ReportKind::kStepped && stepped->episodes.empty());

  sampler.post_command(CommandKind::kAct, 0, 10, 3);
  const WorkerCommand act = worker.wait();
  EXPECT(act.kind == CommandKind::kAct && act.split == 0 && act.block == 10 && act.step == 3);

  EXPECT_THROWS(worker.post_report(ReportKind::kStepped, 2, 0), std::out_of_range, "split 2");
  EXPECT_THROWS(worker.post_report(ReportKind::kStepped, -1, 0), std::out_of_range, "split -1");
  EXPECT_THROWS(worker.post_report(ReportKind::kStepped, 0, 4), std::out_of_range, "num_episodes 4");
  EXPECT_THROWS(worker.post_report(ReportKind::kStepped, 0, -1), std::out_of_range, "num_episodes -1");
  EXPECT_THROWS(worker.episode_records(2), std::out_of_range, "split 2");
}

TEST_CASE(activity_shows_owed_reports_and_progress) {
  Channel channel(2, 1);
  SamplerMailboxEnd& sampler = *channel.sampler;
  WorkerMailboxEnd& worker = *channel.worker;
  auto activity = sampler.activity();
  EXPECT(!activity.owes_report && !activity.attached && activity.progress == 0);
  sampler.post_command(CommandKind::kAssign, 1, 1, 0);
  EXPECT(sampler.activity().owes_report);  // owed from the moment it was posted, attached or not
  EXPECT(worker.attach() && sampler.activity().attached);
  EXPECT(!worker.stop_requested());  // the check between slow steps is progress
  EXPECT(sampler.activity().progress == 1);
  EXPECT(worker.wait().split == 1);
  EXPECT(sampler.activity().owes_report);  // taken, not yet reported
  worker.post_report(ReportKind::kReady, 1, 0);
  activity = sampler.activity();
  EXPECT(!activity.owes_report && activity.progress == 2);  // a report is progress too
  EXPECT(sampler.take_report(1).has_value());
  sampler.post_command(CommandKind::kAct, 1, 1, 0);
  sampler.post_command(CommandKind::kAssign, 0, 0, 0);
  EXPECT(worker.wait().split == 0);
  worker.post_report(ReportKind::kReady, 0, 0);
  EXPECT_MSG(sampler.activity().owes_report, "split 1 still owes its step");
}

TEST_CASE(malformed_messages_are_protocol_errors) {
  Channel channel(1, 2);
  const MailboxLayout& layout = channel.parts.layout;
  const std::int64_t report = layout.report_slot(0);
  const auto forge_report = [&](std::int64_t seq, std::int64_t kind, std::int64_t episodes) {
    channel.set_word(report + MailboxLayout::kKind, kind);
    channel.set_word(report + MailboxLayout::kNumEpisodes, episodes);
    channel.set_word(report + MailboxLayout::kSeq, seq);
  };
  forge_report(1, 7, 0);
  EXPECT_THROWS(channel.sampler->take_report(0), std::runtime_error, "report kind 7");
  forge_report(2, static_cast<std::int64_t>(ReportKind::kStepped), 3);
  EXPECT_THROWS(channel.sampler->take_report(0), std::runtime_error, "3 finished episodes");
  forge_report(3, static_cast<std::int64_t>(ReportKind::kStepped), -1);
  EXPECT_THROWS(channel.sampler->take_report(0), std::runtime_error, "-1 finished episodes");
  channel.set_word(report + MailboxLayout::kRecords + MailboxLayout::kEnvIndex, 2);
  forge_report(4, static_cast<std::int64_t>(ReportKind::kStepped), 1);
  EXPECT_THROWS(channel.sampler->take_report(0), std::runtime_error, "episode of env 2");
  forge_report(6, static_cast<std::int64_t>(ReportKind::kReady), 0);  // 5 was skipped: a lost report
  EXPECT_THROWS(channel.sampler->take_report(0), std::runtime_error, "report 6 after 4");

  const std::int64_t command = layout.command_slot(0);
  channel.set_word(command + MailboxLayout::kKind, static_cast<std::int64_t>(CommandKind::kStop));  // never in a slot
  channel.set_word(command + MailboxLayout::kSeq, 1);
  EXPECT_THROWS(channel.worker->wait(), std::runtime_error, "command kind 3");
}

TEST_CASE(wake_ups_are_signalled_only_to_a_waiting_reader) {
  Channel channel(2, 2);
  const int wake_worker = channel.wake_worker_probe.get();
  const int reports_posted = channel.reports_posted_probe.get();
  // Nobody waits: messages cost no eventfd write.
  channel.sampler->post_command(CommandKind::kAssign, 0, 1, 0);
  channel.worker->post_report(ReportKind::kReady, 0, 0);
  EXPECT(take_signals(wake_worker) == 0);
  EXPECT(take_signals(reports_posted) == 0);
  // A reader that announced its wait is signalled (the waiting word is what the eventcount reads).
  channel.set_word(MailboxLayout::kWorkerWaitingWord, 1);
  channel.sampler->post_command(CommandKind::kAssign, 1, 1, 0);
  EXPECT(take_signals(wake_worker) == 1);
  channel.set_word(MailboxLayout::kWorkerWaitingWord, 0);
  channel.set_word(MailboxLayout::kProxyWaitingWord, 1);
  EXPECT(channel.worker->wait().split == 0);
  channel.worker->post_report(ReportKind::kReady, 1, 0);
  EXPECT(take_signals(reports_posted) == 1);
  channel.set_word(MailboxLayout::kProxyWaitingWord, 0);
  // STOP and wake_proxy signal unconditionally.
  channel.sampler->post_stop();
  EXPECT(take_signals(wake_worker) == 1);
  channel.sampler->wake_proxy();
  EXPECT(take_signals(reports_posted) == 1);
  // wait_for_reports with a report pending returns at once and leaves the waiting word clear.
  {
    const Watchdog watchdog(10s, "wait_for_reports with reports pending", [&] { channel.force_wake(); });
    channel.sampler->wait_for_reports();
  }
  EXPECT(channel.word(MailboxLayout::kProxyWaitingWord) == 0);
  EXPECT(channel.sampler->take_report(0) && channel.sampler->take_report(1));
}

TEST_CASE(stop_wins_over_pending_commands_and_stays_set) {
  Channel channel(1, 1);
  channel.sampler->post_command(CommandKind::kAssign, 0, 0, 0);
  channel.sampler->post_stop();
  EXPECT(channel.worker->stop_requested());
  for (int i = 0; i < 3; ++i) EXPECT(channel.worker->wait().kind == CommandKind::kStop);  // never blocks
}

TEST_CASE(start_up_handshake_attach_or_abandon) {
  {
    Channel channel(1, 1);
    EXPECT(channel.word(MailboxLayout::kWorkerStateWord) == static_cast<std::int64_t>(WorkerState::kStarting));
    EXPECT(channel.worker->attach());
    EXPECT(channel.word(MailboxLayout::kWorkerStateWord) == static_cast<std::int64_t>(WorkerState::kAttached));
    EXPECT(!abandon_if_starting(channel.parts.mailbox));  // attached first: it holds envs, stop it normally
    EXPECT(channel.word(MailboxLayout::kWorkerStateWord) == static_cast<std::int64_t>(WorkerState::kAttached));
  }
  {
    Channel channel(1, 1);
    EXPECT(abandon_if_starting(channel.parts.mailbox));  // abandoned first: may be terminated at once
    EXPECT(abandon_if_starting(channel.parts.mailbox));  // and stays so
    EXPECT(!channel.worker->attach());
    EXPECT(channel.word(MailboxLayout::kWorkerStateWord) == static_cast<std::int64_t>(WorkerState::kAbandoned));
  }
}

// ---- blocking without spinning, and waking ----------------------------------------------------------------

/// Runs `wait` in a thread, checks that it announces its wait in `waiting_word` and then sleeps without
/// burning CPU, calls `wake`, and checks that `wait` returns within kWakeBound. Returns what `wait` returned.
template <typename Wait, typename Wake>
auto expect_blocked_until_woken(Channel& channel, std::int64_t waiting_word, const std::string& what, Wait wait,
                                Wake wake) {
  std::atomic<bool> returned{false};
  decltype(wait()) got{};
  Clock::time_point woke_at;
  Watchdog watchdog(10s, what, [&] { channel.force_wake(); });
  std::jthread waiter([&] {
    got = wait();
    woke_at = Clock::now();
    returned.store(true);
  });
  EXPECT(eventually([&] { return channel.word(waiting_word) == 1; }));
  expect_sleeping(waiter.native_handle(), returned, "the waiter", 20ms);
  const auto woken_at = Clock::now();
  wake();
  waiter.join();
  EXPECT(woke_at - woken_at < kWakeBound);
  EXPECT(channel.word(waiting_word) == 0);
  return got;
}

TEST_CASE(a_waiting_worker_sleeps_until_a_command_arrives) {
  Channel channel(2, 1);
  const WorkerCommand got = expect_blocked_until_woken(
      channel, MailboxLayout::kWorkerWaitingWord, "the waiting worker", [&] { return channel.worker->wait(); },
      [&] { channel.sampler->post_command(CommandKind::kAct, 1, 42, 9); });
  EXPECT(got.kind == CommandKind::kAct && got.split == 1 && got.block == 42 && got.step == 9);
}

TEST_CASE(a_waiting_proxy_sleeps_until_a_report_or_wake_proxy) {
  Channel channel(1, 1);
  for (bool by_report : {true, false}) {
    expect_blocked_until_woken(
        channel, MailboxLayout::kProxyWaitingWord, "the waiting proxy",
        [&] {
          channel.sampler->wait_for_reports();
          return true;
        },
        [&] {
          if (by_report) {
            channel.worker->post_report(ReportKind::kReady, 0, 0);
          } else {
            channel.sampler->wake_proxy();
          }
        });
    EXPECT(channel.sampler->take_report(0).has_value() == by_report);
  }
}

TEST_CASE(stop_wakes_a_blocked_worker_so_it_can_be_joined) {
  Channel channel(3, 2);
  const WorkerCommand got = expect_blocked_until_woken(
      channel, MailboxLayout::kWorkerWaitingWord, "the stopped worker", [&] { return channel.worker->wait(); },
      [&] { std::jthread([&] { channel.sampler->post_stop(); }).join(); });  // any thread may stop
  EXPECT(got.kind == CommandKind::kStop && got.split == -1);
}

TEST_CASE(hang_up_wakes_the_lifeline_watcher_and_the_worker) {
  Channel channel(1, 1);
  std::atomic<bool> worker_returned{false};
  WorkerCommand got{};
  Watchdog watchdog(10s, "the lifeline hang-up", [&] {
    channel.force_wake();
    channel.worker->report_error("watchdog");  // makes the sampler's end readable without hang_up_lifeline
  });
  LifelineWatcher watcher(*channel.sampler);
  std::jthread worker([&] {
    got = channel.worker->wait();
    worker_returned.store(true);
  });
  EXPECT(eventually([&] { return channel.word(MailboxLayout::kWorkerWaitingWord) == 1; }));
  expect_sleeping(watcher.native_handle(), watcher.returned(), "the lifeline watcher", 20ms);
  const auto hung_up_at = Clock::now();
  channel.sampler->hang_up_lifeline();
  watcher.join();
  worker.join();
  EXPECT(watcher.woke_at() - hung_up_at < kWakeBound);
  EXPECT(!watcher.text().has_value());
  EXPECT_MSG(got.kind == CommandKind::kStop, "the worker takes a hung-up lifeline for STOP");
  EXPECT(channel.word(MailboxLayout::kStopWord) == 0);  // it was the lifeline, not the STOP word,
  EXPECT_MSG(channel.worker->stop_requested(), "and stop_requested() sees the sampler gone as well");
}

TEST_CASE(a_worker_that_goes_away_is_seen_on_the_lifeline) {
  Channel channel(1, 1);
  Watchdog watchdog(10s, "the lifeline watcher", [&] { channel.sampler->hang_up_lifeline(); });
  LifelineWatcher watcher(*channel.sampler);
  std::this_thread::sleep_for(20ms);
  expect_sleeping(watcher.native_handle(), watcher.returned(), "the lifeline watcher", 20ms);
  const auto gone_at = Clock::now();
  channel.worker.reset();  // closes its descriptors, as exiting does
  watcher.join();
  EXPECT(watcher.woke_at() - gone_at < kWakeBound);
  EXPECT_MSG(!watcher.text().has_value(), "a hang-up without text: exited unexpectedly");
}

TEST_CASE(a_worker_error_text_travels_through_the_lifeline) {
  {
    Channel channel(1, 1);
    Watchdog watchdog(10s, "the lifeline watcher", [&] { channel.sampler->hang_up_lifeline(); });
    LifelineWatcher watcher(*channel.sampler);
    channel.worker->report_error("env exploded: ValueError('bad action')");
    channel.worker.reset();
    watcher.join();
    EXPECT(watcher.text() == std::optional<std::string>("env exploded: ValueError('bad action')"));
  }
  {
    Channel channel(1, 1);  // at most 4000 bytes, in one piece
    std::string long_text(10000, 'x');
    for (std::size_t i = 0; i < long_text.size(); ++i) long_text[i] = static_cast<char>('a' + i % 26);
    channel.worker->report_error(long_text);
    channel.sampler->wait_for_lifeline();
    EXPECT(channel.sampler->read_lifeline() == std::optional<std::string>(long_text.substr(0, 4000)));
  }
  {
    Channel channel(1, 1);  // a sampler that is already gone: no SIGPIPE, no exception
    channel.sampler.reset();
    channel.worker->report_error("too late");
    const Watchdog watchdog(10s, "the orphaned worker", [&] { channel.force_wake(); });
    EXPECT(channel.worker->wait().kind == CommandKind::kStop);  // and the worker sees it gone,
    EXPECT(channel.worker->stop_requested());                   // between slow steps too
  }
}

TEST_CASE(a_sampler_that_goes_away_stops_a_waiting_worker) {
  Channel channel(2, 1);
  const WorkerCommand got = expect_blocked_until_woken(
      channel, MailboxLayout::kWorkerWaitingWord, "the orphaned worker", [&] { return channel.worker->wait(); },
      [&] { channel.sampler.reset(); });  // closes the sampler's descriptors, as its process dying does
  EXPECT(got.kind == CommandKind::kStop);
  EXPECT(channel.word(MailboxLayout::kStopWord) == 0);  // it was the lifeline, not the STOP word,
  EXPECT_MSG(channel.worker->stop_requested(), "and stop_requested() sees the sampler gone as well");
}

// ---- the protocol across threads ----------------------------------------------------------------------------

TEST_CASE(threaded_round_trip_every_message_once_in_order) {
  // Commands posted by an "inference" thread, reports taken by the proxy thread: 3 splits x 2000 steps.
  Channel channel(3, 4);
  RoundTrip round_trip(channel, 2000, /*post_from_other_thread=*/true, 30s);
  round_trip.finish();
}

TEST_CASE(many_mailboxes_concurrently) {
  // 4 workers x 2 splits x 2500 steps, each worker with its own proxy (half of them with a separate
  // poster thread): 10 threads on a 2-core machine, so readers sleep and wake all the time (the
  // eventcount's slow path), next to readers that find the next message without sleeping.
  constexpr int kWorkers = 4;
  constexpr std::int64_t kSteps = 2500;
  std::vector<std::unique_ptr<Channel>> channels;
  for (int w = 0; w < kWorkers; ++w) channels.push_back(std::make_unique<Channel>(2, 1 + w));
  const auto start = Clock::now();
  {
    std::vector<std::unique_ptr<RoundTrip>> round_trips;
    for (int w = 0; w < kWorkers; ++w) {
      round_trips.push_back(
          std::make_unique<RoundTrip>(*channels[static_cast<std::size_t>(w)], kSteps, w % 2 == 1, 60s));
    }
    for (auto& round_trip : round_trips) round_trip->finish();
  }
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  std::printf("  %d workers x 2 splits x %lld round trips in %lld ms\n", kWorkers, static_cast<long long>(kSteps),
              static_cast<long long>(elapsed.count()));
}

// ---- a forked worker process ---------------------------------------------------------------------------------

TEST_CASE(forked_worker_process_round_trip) {
  constexpr std::int64_t kSteps = 2000;
  ChannelParts parts(2, 3);
  const at::Tensor payload_words = shared_words(4);
  std::int64_t* payload = payload_words.data_ptr<std::int64_t>();
  ChildProcess child([&] {
    parts.close_sampler_fds();
    const std::unique_ptr<WorkerMailboxEnd> worker_end = parts.make_worker_end();
    WorkerMailboxEnd& worker = *worker_end;
    if (!worker.attach()) return 3;
    const std::string error = run_worker(worker, kSteps, payload);
    if (!error.empty()) {
      worker.report_error(error);
      return 1;
    }
    return 0;
  });
  parts.close_worker_fds();
  std::unique_ptr<SamplerMailboxEnd> sampler = parts.make_sampler_end();
  std::atomic<bool> abort{false};
  const auto abort_proxy = [&] {
    abort.store(true);
    sampler->wake_proxy();
  };
  Watchdog watchdog(30s, "the forked round trip", [&] {
    abort_proxy();
    ::kill(child.pid(), SIGKILL);  // also wakes the lifeline watcher
  });
  LifelineWatcher watcher(*sampler, abort_proxy);  // the child failed or died: stop waiting for reports
  const std::string proxy_error = run_proxy(
      *sampler, kSteps, payload, [&](int s, std::int64_t t) { post_scripted_command(*sampler, payload, s, t); }, abort);
  EXPECT_MSG(proxy_error.empty(), "sampler side: " + proxy_error);
  EXPECT(!abandon_if_starting(parts.mailbox));  // it attached before it reported
  EXPECT(!watcher.returned().load());           // alive until told to stop
  sampler->post_stop();
  const std::optional<int> status = child.wait_for_exit(10s);
  watcher.join();
  EXPECT_MSG(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0,
             describe_status(status) + (watcher.text() ? ": " + *watcher.text() : std::string()));
  EXPECT_MSG(!watcher.text().has_value(), "a normal exit after STOP sends no error text");
}

TEST_CASE(a_killed_worker_process_is_detected_promptly) {
  ChannelParts parts(1, 1);
  ChildProcess child([&] {
    parts.close_sampler_fds();
    const std::unique_ptr<WorkerMailboxEnd> worker_end = parts.make_worker_end();
    WorkerMailboxEnd& worker = *worker_end;
    worker.attach();
    for (;;) {
      if (worker.wait().kind == CommandKind::kStop) return 0;  // sleeps here until killed
    }
  });
  parts.close_worker_fds();
  std::unique_ptr<SamplerMailboxEnd> sampler = parts.make_sampler_end();
  Watchdog watchdog(10s, "death detection", [&] { sampler->hang_up_lifeline(); });  // the child is gone already
  LifelineWatcher watcher(*sampler);
  const MailboxWords words(parts.mailbox, parts.layout);
  EXPECT(eventually([&] { return words.load(MailboxLayout::kWorkerWaitingWord, std::memory_order_seq_cst) == 1; }));
  EXPECT(!watcher.returned().load());
  const auto killed_at = Clock::now();
  ::kill(child.pid(), SIGKILL);
  watcher.join();
  EXPECT(watcher.woke_at() - killed_at < kWakeBound);
  EXPECT_MSG(!watcher.text().has_value(), "killed: a hang-up without text");
  const std::optional<int> status = child.wait_for_exit(10s);
  EXPECT(status && WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
}

TEST_CASE(a_failing_worker_process_sends_its_error_text) {
  ChannelParts parts(1, 1);
  ChildProcess child([&] {
    parts.close_sampler_fds();
    const std::unique_ptr<WorkerMailboxEnd> worker_end = parts.make_worker_end();
    WorkerMailboxEnd& worker = *worker_end;
    worker.attach();
    const WorkerCommand command = worker.wait();  // the ASSIGN, then the env "fails" to reset
    worker.report_error("reset failed for block " + std::to_string(command.block));
    return 1;
  });
  parts.close_worker_fds();
  std::unique_ptr<SamplerMailboxEnd> sampler = parts.make_sampler_end();
  Watchdog watchdog(10s, "error text", [&] { ::kill(child.pid(), SIGKILL); });
  LifelineWatcher watcher(*sampler);
  sampler->post_command(CommandKind::kAssign, 0, 77, 0);
  watcher.join();
  EXPECT(watcher.text() == std::optional<std::string>("reset failed for block 77"));
  const std::optional<int> status = child.wait_for_exit(10s);
  EXPECT(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 1);
}

TEST_CASE(a_worker_process_exits_when_the_sampler_hangs_up) {
  ChannelParts parts(2, 1);
  ChildProcess child([&] {
    parts.close_sampler_fds();
    const std::unique_ptr<WorkerMailboxEnd> worker_end = parts.make_worker_end();
    WorkerMailboxEnd& worker = *worker_end;
    worker.attach();
    const WorkerCommand command = worker.wait();
    // STOP from the hang-up; stop_requested() (between slow steps) sees the sampler gone too.
    return command.kind == CommandKind::kStop && worker.stop_requested() ? 0 : 1;
  });
  parts.close_worker_fds();
  std::unique_ptr<SamplerMailboxEnd> sampler = parts.make_sampler_end();
  const MailboxWords words(parts.mailbox, parts.layout);
  EXPECT(eventually([&] { return words.load(MailboxLayout::kWorkerWaitingWord, std::memory_order_seq_cst) == 1; }));
  sampler->hang_up_lifeline();
  const std::optional<int> status = child.wait_for_exit(std::chrono::duration_cast<std::chrono::milliseconds>(kWakeBound));
  EXPECT_MSG(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0, describe_status(status));
}

}  // namespace
