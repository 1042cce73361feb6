// One registration function per binding file; module.cpp calls them all when pysf._C is imported.
#pragma once

#include <torch/csrc/utils/pybind.h>

namespace pysf::python {

/// pysf._C.Policy (csrc/inference/policy.h).
void bind_inference(pybind11::module_& module);

void bind_envs(pybind11::module_& module);  ///< pysf._C.NativeVectorEnv, native_env_names (csrc/envs)

/// pysf._C.Sampler (csrc/sampler/sampler.h).
void bind_sampler(pybind11::module_& module);

}  // namespace pysf::python
