// The return/advantage ops' shared argument checks and CPU input preparation.
#include "ops/common.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <sstream>

namespace pysf::ops::detail {

namespace {

std::string shape_string(c10::SymIntArrayRef sizes) {
  std::ostringstream text;
  text << '[';
  for (std::size_t i = 0; i < sizes.size(); ++i) text << (i ? ", " : "") << sizes[i];
  text << ']';
  return text.str();
}

void check_defined(std::string_view op, std::string_view argument, const at::Tensor& tensor) {
  if (!tensor.defined()) fail(op, argument, "is an undefined tensor");
}

}  // namespace

void fail(std::string_view op, std::string_view argument, const std::string& problem) {
  C10_THROW_ERROR(ValueError, std::string(op) + ": " + std::string(argument) + " " + problem);
}

BatchShape check_batch(std::string_view op, std::string_view argument, const at::Tensor& tensor) {
  check_defined(op, argument, tensor);
  if (tensor.dim() != 2) fail(op, argument, "must be 2-D [N, T], got shape " + shape_string(tensor.sym_sizes()));
  BatchShape shape{tensor.sym_size(0), tensor.sym_size(1)};
  if (shape.steps < 1) fail(op, argument, "must have at least one step (T >= 1), got shape [N, 0]");
  return shape;
}

void check_shape(std::string_view op, std::string_view argument, const at::Tensor& tensor, const c10::SymInt& rows,
                 const c10::SymInt& cols, std::string_view expected_text) {
  check_defined(op, argument, tensor);
  if (tensor.dim() != 2 || tensor.sym_size(0) != rows || tensor.sym_size(1) != cols) {
    fail(op, argument,
         "must have shape " + std::string(expected_text) + " = " + shape_string({rows, cols}) + ", got " +
             shape_string(tensor.sym_sizes()));
  }
}

void check_floating(std::string_view op, std::string_view argument, const at::Tensor& tensor) {
  if (!at::isFloatingType(tensor.scalar_type())) {
    fail(op, argument,
         std::string("must have a floating-point dtype, got ") + c10::toString(tensor.scalar_type()));
  }
}

void check_flags(std::string_view op, std::string_view argument, const at::Tensor& tensor) {
  const at::ScalarType type = tensor.scalar_type();
  if (type != at::kBool && !at::isIntegralType(type, /*includeBool=*/false) && !at::isFloatingType(type)) {
    fail(op, argument, std::string("must be bool or a real dtype, got ") + c10::toString(type));
  }
}

void check_same_device(std::string_view op, const at::Tensor& first,
                       std::initializer_list<std::pair<std::string_view, const at::Tensor&>> others) {
  const at::Device device = first.device();
  for (const auto& [argument, tensor] : others) {
    if (tensor.device() != device) {
      fail(op, argument,
           "is on " + tensor.device().str() + " but the first argument is on " + device.str() +
               ": all inputs must be on one device");
    }
  }
}

at::Tensor empty_result(const at::Tensor& like, const BatchShape& shape) {
  return at::empty_symint({shape.rows, shape.steps}, like.options().dtype(at::kFloat));
}

at::Tensor float32_contiguous(const at::Tensor& tensor) { return tensor.to(at::kFloat).contiguous(); }

at::Tensor flag_storage(const at::Tensor& flags) {
  return flags.scalar_type() == at::kBool ? flags.contiguous() : float32_contiguous(flags);
}

}  // namespace pysf::ops::detail
