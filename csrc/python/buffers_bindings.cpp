// Bindings for the trajectory layout (csrc/buffers/trajectory_buffers.h). Conversion only: the table itself
// is kTrajectoryFields; Python allocates from what trajectory_fields() returns.
#include <torch/csrc/Dtype.h>
#include <torch/csrc/DynamicTypes.h>
#include <torch/csrc/utils/pybind.h>

#include <string>

#include "buffers/trajectory_buffers.h"
#include "python/bindings.h"

namespace py = pybind11;
using pysf::buffers::FieldWriter;
using pysf::buffers::kTrajectoryFields;
using pysf::buffers::TrailingSize;
using pysf::buffers::TrajectoryField;

namespace {

py::object torch_dtype(c10::ScalarType dtype) {
  return py::reinterpret_borrow<py::object>(reinterpret_cast<PyObject*>(torch::getTHPDtype(dtype)));
}

c10::ScalarType scalar_type(const py::object& dtype) {
  if (!THPDtype_Check(dtype.ptr())) throw py::type_error("expected a torch.dtype");
  return reinterpret_cast<THPDtype*>(dtype.ptr())->scalar_type;
}

// The names the Python side reads sizes by (allocate_trajectory_buffers' keyword arguments).
py::object trailing_name(TrailingSize trailing) {
  switch (trailing) {
    case TrailingSize::None: return py::none();
    case TrailingSize::RnnState: return py::str("rnn_state_size");
    case TrailingSize::NumActions: return py::str("num_actions");
    case TrailingSize::NumActionParameters: return py::str("num_action_parameters");
  }
  return py::none();
}

const char* writer_name(FieldWriter writer) {
  switch (writer) {
    case FieldWriter::Env: return "env";
    case FieldWriter::Inference: return "inference";
    case FieldWriter::Sampler: return "sampler";
  }
  return "?";
}

py::dict field_dict(const TrajectoryField& field) {
  py::dict d;
  d["name"] = field.name;
  d["dtype"] = torch_dtype(field.dtype);
  d["bootstrap_step"] = field.bootstrap_step;
  d["trailing"] = trailing_name(field.trailing);
  d["initial_value"] = field.initial_value;
  d["writer"] = writer_name(field.writer);
  d["env_worker_view"] = field.env_worker_view;
  d["policy_output"] = field.policy_output == nullptr ? py::object(py::none()) : py::object(py::str(field.policy_output));
  return d;
}

}  // namespace

namespace pysf::python {

buffers::TrajectoryBuffers buffers_from_dict(const py::dict& d) {
  buffers::TrajectoryBuffers buffers;
  for (const auto& [key, tensor] : d["obs"].cast<py::dict>()) {
    buffers.obs.insert_or_assign(key.cast<std::string>(), tensor.cast<at::Tensor>());
  }
  for (const TrajectoryField& field : kTrajectoryFields) {
    if (!d.contains(field.name)) throw py::key_error(std::string("trajectory buffers: no tensor '") + field.name + "'");
    buffers.*field.member = d[field.name].cast<at::Tensor>();
  }
  buffers.block_rows = d["block_rows"].cast<std::int64_t>();
  return buffers;
}

void bind_buffers(py::module_& module) {
  module.def(
      "trajectory_fields",
      [] {
        py::list fields;
        for (const TrajectoryField& field : kTrajectoryFields) fields.append(field_dict(field));
        return fields;
      },
      "The trajectory layout (csrc/buffers/trajectory_buffers.h kTrajectoryFields), one dict per tensor besides the "
      "observations: name, dtype, bootstrap_step (T+1 steps), trailing (the size naming the last dim, or None), "
      "initial_value, writer ('env', 'inference' or 'sampler'), env_worker_view, policy_output.");
  module.def(
      "unwritten_observation_value",
      [](const py::object& dtype) { return pysf::buffers::unwritten_observation_value(scalar_type(dtype)); },
      py::arg("dtype"), "What an observation buffer of this torch.dtype is filled with before anything is written.");
}

}  // namespace pysf::python
