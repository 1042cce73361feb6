// InferenceRequest: "the observations of this split at this step are written; please act".
#pragma once

#include <cstdint>

namespace pysf::sampler {

/// A request names the rows and the step of the trajectory buffers to act on; the data itself stays in
/// the buffers (only indices travel). Each split has at most one request in flight.
struct InferenceRequest {
  int split = 0;            // global split id: whom to notify when the actions are written
  std::int64_t block = 0;   // trajectory block the split currently fills
  std::int64_t step = 0;    // time step within the block
};

}  // namespace pysf::sampler
