// NumPy's scalar arithmetic where it differs from the obvious C++: needed to reproduce gymnasium's
// classic-control envs bit for bit.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace pysf::envs::numpy {

namespace detail {
// Read through volatile so that the compiler cannot see the exponent and fold pow(x, 2) into x * x.
inline volatile double two = 2.0;
inline volatile float two_f = 2.0f;
}  // namespace detail

/// `x ** 2` of a NumPy float64 scalar. NumPy evaluates it with the C library's pow(), not as x * x, and
/// the two differ in the last bit for about 0.1% of inputs (np.square, by contrast, is x * x).
///
/// pow() is slow (~20 ns), so the common case is answered without it, exactly: glibc's pow is within
/// 0.52 ulp of the true value (glibc >= 2.28; correctly rounded before), so it can only differ from the
/// rounded product x * x when the exact square lies within 0.02 ulp of a midpoint between two doubles.
/// fma gives the exact rounding error of x * x; when that is below 0.45 ulp, every other double is more
/// than 0.55 ulp from the exact square, so pow must return x * x. Otherwise (~10%), ask pow itself.
[[nodiscard]] inline double square(double x) {
  const double product = x * x;
  const double rounding_error = std::fma(x, x, -product);  // exact: x * x == product + rounding_error
  const std::uint64_t exponent_bits = std::bit_cast<std::uint64_t>(product) & 0x7FF0000000000000ULL;
  // For a normal product, ulp(product) is its power of two (exponent bits, zero mantissa) times 2^-52.
  if (exponent_bits != 0 && exponent_bits != 0x7FF0000000000000ULL &&
      std::abs(rounding_error) < 0.45 * 0x1p-52 * std::bit_cast<double>(exponent_bits)) {
    return product;
  }
  return std::pow(x, detail::two);
}

/// `x ** 2` of a NumPy float32 scalar: powf(), which also differs from x * x for some inputs.
[[nodiscard]] inline float square(float x) { return std::pow(x, detail::two_f); }

/// `a % b` of NumPy float64 scalars (npy_remainder): the result takes the sign of b, as in Python.
[[nodiscard]] inline double remainder(double a, double b) {
  double mod = std::fmod(a, b);
  if (b == 0.0) return mod;
  if (mod != 0.0) {
    if ((b < 0) != (mod < 0)) mod += b;
  } else {
    mod = std::copysign(0.0, b);
  }
  return mod;
}

}  // namespace pysf::envs::numpy
