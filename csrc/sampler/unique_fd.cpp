#include "sampler/unique_fd.h"

#include <unistd.h>

namespace pysf::sampler {

void UniqueFd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace pysf::sampler
