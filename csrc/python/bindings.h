// One registration function per binding file; module.cpp calls them all when pysf._C is imported.
#pragma once

#include <torch/csrc/utils/pybind.h>

namespace pysf::python {

/// pysf._C.Policy (csrc/inference/policy.h).
void bind_inference(pybind11::module_& module);

}  // namespace pysf::python
