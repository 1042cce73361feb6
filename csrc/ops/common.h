// What the kernels of the return/advantage ops (gae.cpp, vtrace.cpp) share: argument checks that throw
// c10::ValueError (Python ValueError) naming the op and the argument, and the CPU loops' input preparation.
//
// Sizes are checked as c10::SymInt so that the same checks serve the Meta kernels under torch.compile and
// torch.export with dynamic shapes (for ordinary tensors a SymInt is a plain integer).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/SymInt.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace pysf::ops::detail {

/// Throws c10::ValueError "<op>: <argument> <problem>".
[[noreturn]] void fail(std::string_view op, std::string_view argument, const std::string& problem);

/// N (trajectories) and T (steps) of an op's batch, read off its first argument.
struct BatchShape {
  c10::SymInt rows;
  c10::SymInt steps;
};

/// The first argument: a defined 2-D [N, T] tensor with T >= 1 (N = 0 is allowed).
[[nodiscard]] BatchShape check_batch(std::string_view op, std::string_view argument, const at::Tensor& tensor);

/// `tensor` must be 2-D with exactly `rows` x `cols` elements; `expected_text` names the shape ("[N, T+1]").
void check_shape(std::string_view op, std::string_view argument, const at::Tensor& tensor, const c10::SymInt& rows,
                 const c10::SymInt& cols, std::string_view expected_text);

/// Real-valued data (rewards, values, ratios): a floating-point dtype. Integers are refused because they
/// almost always mean a mixed-up argument, not intended data.
void check_floating(std::string_view op, std::string_view argument, const at::Tensor& tensor);

/// 0/1 flags (dones, valids): bool or any real dtype.
void check_flags(std::string_view op, std::string_view argument, const at::Tensor& tensor);

/// Every tensor of `others` (name, tensor) must be on `first`'s device.
void check_same_device(std::string_view op, const at::Tensor& first,
                       std::initializer_list<std::pair<std::string_view, const at::Tensor&>> others);

/// A new contiguous float32 [rows, steps] tensor on `like`'s device: every kernel's result.
[[nodiscard]] at::Tensor empty_result(const at::Tensor& like, const BatchShape& shape);

// ---- the CPU kernels' view of their inputs ----------------------------------------------------------------

/// Trajectories whose recursions (pass 2 of GAE and V-trace) advance together: enough independent chains of
/// multiply-adds to hide the latency of one step, while their per-step factors (kLanes * T floats) stay in L1.
inline constexpr int kLanes = 8;

/// `tensor` as float32 and contiguous: no copy when it already is.
[[nodiscard]] at::Tensor float32_contiguous(const at::Tensor& tensor);

/// Flags as the CPU loops read them: bool tensors stay bool (what the rollout buffers hold, so the common case
/// needs no float copy), anything else becomes float32; contiguous either way.
[[nodiscard]] at::Tensor flag_storage(const at::Tensor& flags);

/// A flag element as float: bool storage is read as its bytes (0 or 1), since GCC does not vectorize loads
/// of `bool` itself.
inline float flag_value(std::uint8_t flag) { return static_cast<float>(flag); }
inline float flag_value(float flag) { return flag; }

/// Calls `body(data)` with the data of `flags` (a flag_storage() result) as `const std::uint8_t*` (bool) or
/// `const float*`, so that a loop templated on the element type reads either without conversion.
template <typename Body>
void with_flag_data(const at::Tensor& flags, Body&& body) {
  if (flags.scalar_type() == at::kBool) {
    body(reinterpret_cast<const std::uint8_t*>(flags.const_data_ptr<bool>()));
  } else {
    body(flags.const_data_ptr<float>());
  }
}

}  // namespace pysf::ops::detail
