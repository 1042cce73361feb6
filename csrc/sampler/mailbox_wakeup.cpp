#include "sampler/mailbox_wakeup.h"

#include <poll.h>
#include <sys/eventfd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace pysf::sampler {

namespace {

std::string errno_text(const char* what) { return std::string(what) + " failed: " + std::strerror(errno); }

/// Sleeps in poll() until one of `fds` is readable (or hung up).
void wait_until_readable(pollfd* fds, nfds_t count) {
  while (::poll(fds, count, -1) < 0) {
    if (errno != EINTR) throw std::runtime_error(errno_text("poll"));
  }
}

}  // namespace

void signal_eventfd(int fd) {
  while (::eventfd_write(fd, 1) != 0) {
    // EAGAIN would need 2^64-2 unread signals; anything but EINTR means the fd is unusable, and the
    // lifeline reports the real problem (a dead peer) on its own.
    if (errno != EINTR) return;
  }
}

void drain_eventfd(int fd) {
  eventfd_t ignored = 0;
  while (::eventfd_read(fd, &ignored) != 0 && errno == EINTR) {
  }
}

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

bool wait_for_eventfd_or_lifeline(int eventfd, int lifeline) {
  pollfd fds[2] = {{eventfd, POLLIN, 0}, {lifeline, POLLIN, 0}};
  wait_until_readable(fds, 2);
  if (fds[1].revents != 0) return false;
  drain_eventfd(eventfd);
  return true;
}

}  // namespace pysf::sampler
