// UniqueFd: ownership of one file descriptor (the mailbox's eventfds and lifeline socket ends).
#pragma once

#include <utility>

namespace pysf::sampler {

/// RAII owner of a file descriptor (closed on destruction; -1 means none). Move-only.
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
  /// Gives up ownership: returns the descriptor (the caller closes it) and holds none.
  int release() { return std::exchange(fd_, -1); }
  /// Closes the descriptor, if any, and holds none.
  void reset();

 private:
  int fd_ = -1;
};

}  // namespace pysf::sampler
