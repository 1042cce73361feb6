// What the return/advantage ops (csrc/ops: gae.h, vtrace.h) share: the implementation switch and the
// argument checks, which throw std::invalid_argument naming the op and the argument.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace pysf::ops {

/// Which implementation an op runs.
enum class Implementation {
  /// The fast CPU loops for CPU tensors, the device-generic ATen implementation for anything else.
  Auto,
  /// Always the device-generic ATen implementation (what non-CPU tensors get); for tests and comparisons.
  Generic,
};

}  // namespace pysf::ops

namespace pysf::ops::detail {

inline std::string shape_string(at::IntArrayRef sizes) {
  std::string text = "[";
  for (std::size_t i = 0; i < sizes.size(); ++i) text += (i ? ", " : "") + std::to_string(sizes[i]);
  return text + "]";
}

[[noreturn]] inline void fail(std::string_view op, std::string_view argument, const std::string& problem) {
  throw std::invalid_argument(std::string(op) + ": " + std::string(argument) + " " + problem);
}

inline void check_defined(std::string_view op, std::string_view argument, const at::Tensor& tensor) {
  if (!tensor.defined()) fail(op, argument, "is an undefined tensor");
}

/// `tensor` must be 2-D with exactly `rows` x `cols` elements.
inline void check_shape(std::string_view op, std::string_view argument, const at::Tensor& tensor,
                        std::int64_t rows, std::int64_t cols, std::string_view expected_text) {
  check_defined(op, argument, tensor);
  if (tensor.dim() != 2 || tensor.size(0) != rows || tensor.size(1) != cols) {
    fail(op, argument,
         "must have shape " + std::string(expected_text) + " = " + shape_string({rows, cols}) + ", got " +
             shape_string(tensor.sizes()));
  }
}

/// Real-valued data (rewards, values, ratios): a floating-point dtype. Integers are refused because they
/// almost always mean a mixed-up argument, not intended data.
inline void check_floating(std::string_view op, std::string_view argument, const at::Tensor& tensor) {
  if (!at::isFloatingType(tensor.scalar_type())) {
    fail(op, argument,
         std::string("must have a floating-point dtype, got ") + c10::toString(tensor.scalar_type()));
  }
}

/// 0/1 flags (dones, valids): bool, or any real dtype holding 0 and 1 (used linearly, as Sample Factory does
/// after `.float()`).
inline void check_flags(std::string_view op, std::string_view argument, const at::Tensor& tensor) {
  const at::ScalarType type = tensor.scalar_type();
  if (type != at::kBool && !at::isIntegralType(type, /*includeBool=*/false) && !at::isFloatingType(type)) {
    fail(op, argument, std::string("must be bool or a real dtype, got ") + c10::toString(type));
  }
}

inline void check_device(std::string_view op, std::string_view argument, const at::Tensor& tensor,
                         const at::Device& device) {
  if (tensor.device() != device) {
    fail(op, argument,
         "is on " + tensor.device().str() + " but the first argument is on " + device.str() +
             ": all inputs must be on one device");
  }
}

/// `tensor` as float32 and contiguous: no copy when it already is.
inline at::Tensor float32_contiguous(const at::Tensor& tensor) { return tensor.to(at::kFloat).contiguous(); }

}  // namespace pysf::ops::detail
