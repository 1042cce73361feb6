// How a mailbox reader sleeps and its writer wakes it: eventfd signals, poll() waits, and the two halves
// of the eventcount over a waiting word (worker_mailbox.h, "Waking without losing a wake-up"), so that a
// busy reader costs the writer no syscall and a sleeping one is never missed.
#pragma once

#include <atomic>
#include <cstdint>

#include "sampler/mailbox_words.h"

namespace pysf::sampler {

/// eventfd_write: adds 1 to the counter and wakes a poller without a synchronous-wake hint. Best effort:
/// an unusable fd is left for the lifeline to report (a dead peer).
void signal_eventfd(int fd);
/// Resets an eventfd's counter (non-blocking eventfds: a zero counter is not an error worth reporting).
void drain_eventfd(int fd);
/// Sleeps in poll() until `fd` is readable (or hung up). Throws std::runtime_error if poll() fails.
void wait_until_readable(int fd);
/// Like wait_until_readable(fd) for at most `timeout_ms` (< 0: no limit, 0: just look); false on timeout.
bool readable_within(int fd, int timeout_ms);
/// Sleeps until the eventfd or the lifeline is readable, then resets the eventfd. False when the
/// lifeline is readable (the peer wrote an error text or hung up).
bool wait_for_eventfd_or_lifeline(int eventfd, int lifeline);

/// Writer half of the eventcount, right after the message's release store: signals `eventfd` if the
/// reader's `waiting_word` says it sleeps or is about to.
inline void wake_if_waiting(const MailboxWords& words, std::int64_t waiting_word, int eventfd) {
  std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the reader's fence in announce_wait()
  if (words.load(waiting_word, std::memory_order_relaxed) != 0) signal_eventfd(eventfd);
}

/// Reader half, after a scan found nothing: sets `waiting_word`. The reader must then scan once more
/// and sleep only if that scan finds nothing either.
inline void announce_wait(const MailboxWords& words, std::int64_t waiting_word) {
  words.store(waiting_word, 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the writer's fence in wake_if_waiting()
}

/// Reader half, after that second scan (and the sleep, if it slept): clears `waiting_word`.
inline void end_wait(const MailboxWords& words, std::int64_t waiting_word) {
  words.store(waiting_word, 0, std::memory_order_relaxed);
}

}  // namespace pysf::sampler
