// The wire format between the sampler and Python env worker processes (pysf/algo/sampling/protocol.py).
#pragma once

#include <cstdint>

namespace pysf::sampler::protocol {

// Fixed-size little-endian messages over pipes (each write is far below PIPE_BUF, hence atomic).
// Only indices travel: observations, actions and rewards live in the shared trajectory buffers.

/// Worker -> sampler, 12 bytes, followed by `payload_bytes`: EpisodeRecords for kStepped, UTF-8 text for
/// kError.
struct WorkerMessage {
  std::int32_t kind;
  std::int32_t split;  // the worker's local split index
  std::int32_t payload_bytes;
};
enum WorkerMessageKind : std::int32_t {
  kReady = 1,    // initial observations of the split are written at step 0 of its block
  kStepped = 2,  // the split's envs stepped: step t+1 obs, step t raw rewards / terminated / truncated written
  kError = 3,    // the worker failed; the payload says why (it exits afterwards)
};

/// One finished episode in a kStepped payload (episodes whose info carries extra statistics travel
/// through a Python queue instead).
struct EpisodeRecord {
  std::int32_t env_index;  // within the split
  float reward;            // raw return
  std::int32_t length;
};

/// Sampler -> worker, 24 bytes.
struct SamplerMessage {
  std::int32_t kind;
  std::int32_t split;
  std::int64_t block;
  std::int64_t step;
};
enum SamplerMessageKind : std::int32_t {
  kAssign = 1,  // the split starts filling `block` at step 0: reset its envs and write their observations
  kAct = 2,     // actions for (`block`, `step`) are written: step the split's envs
  kStop = 3,    // shut down
};

static_assert(sizeof(WorkerMessage) == 12);
static_assert(sizeof(SamplerMessage) == 24);
static_assert(sizeof(EpisodeRecord) == 12);

}  // namespace pysf::sampler::protocol
