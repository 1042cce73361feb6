// One registration function per binding file; module.cpp calls them all when pysf._C is imported.
#pragma once

#include <torch/csrc/utils/pybind.h>

#include "buffers/trajectory_buffers.h"

namespace pysf::python {

/// pysf._C.Policy (csrc/inference/policy.h).
void bind_inference(pybind11::module_& module);

void bind_envs(pybind11::module_& module);  ///< pysf._C.NativeVectorEnv, native_env_names (csrc/envs)

/// pysf._C.trajectory_fields, unwritten_observation_value (csrc/buffers/trajectory_buffers.h).
void bind_buffers(pybind11::module_& module);
/// The TrajectoryBuffers a Python dict of tensors (keys: kTrajectoryFields' names, "obs", "block_rows") describes.
buffers::TrajectoryBuffers buffers_from_dict(const pybind11::dict& d);

/// pysf._C.Sampler (csrc/sampler/sampler.h).
void bind_sampler(pybind11::module_& module);

}  // namespace pysf::python
