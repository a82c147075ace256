// Package fma provides FMA32, a correctly rounded float32 fused
// multiply-add in pure Go: a*b + c computed exactly and rounded once to
// float32, to nearest with ties to even, as IEEE 754 fusedMultiplyAdd does
// in binary32 and as the FMA instructions of amd64 (VFMADD) and arm64
// (FMADD, FMLA) do. It is the pure-Go twin of fused assembly kernels: the
// same inputs give the same bits on every machine, with or without the
// noasm build tag.
//
// Go has no float32 fused multiply-add, and
//
//	float32(math.FMA(float64(a), float64(b), float64(c)))
//
// rounds twice, first to float64 and then to float32, which is wrong when
// the first rounding lands exactly on a midpoint between two float32
// values that the exact result was not on. FMA32 avoids that as follows.
//
// # Method
//
// Write RN64 and RN32 for rounding to nearest even in float64 and float32,
// with float32's gradual underflow and overflow to ±Inf.
//
//  1. p = float64(a)·float64(b) is exact. A finite float32 is M·2^E with
//     an integer |M| < 2^24 and E ≥ -149, so the product is an integer
//     below 2^48 ≤ 2^53 times 2^(Ea+Eb). Its magnitude, if not zero, lies
//     in [2^-298, 2^256): inside float64's normal range [2^-1022, 2^1024),
//     so it can neither overflow nor underflow (not even to a subnormal).
//  2. s = RN64(p + c). |p + c| < 2^257, so s is finite; and the exact sum
//     x = p + c is a multiple of 2^-298, so s = 0 only when x = 0, and then
//     s has the sign IEEE 754 gives an exact zero sum, which is the sign
//     fusedMultiplyAdd gives (p carries the sign of a·b, zeros included).
//  3. A breakpoint is a value at which RN32 changes: a float32 value, a
//     midpoint between two adjacent float32 values, or the overflow
//     threshold 2^128 - 2^103 (the midpoint between the largest float32 and
//     2^128, at and beyond which RN32 gives ±Inf). RN32 is constant on
//     each open interval between adjacent breakpoints.
//  4. Every breakpoint B ≠ 0 is a float64 whose 28 low mantissa bits are
//     zero. Let 2^k ≤ |B| < 2^(k+1); then k ≥ -150. B is a multiple of half
//     the float32 unit there, which is 2^(max(k-23, -149) - 1) ≥ 2^(k-24).
//     As float64 is normal at 2^k, its unit there is 2^(k-52), and
//     B / 2^(k-52) is a multiple of 2^28. The subnormal range does not
//     weaken this: there float32 has fewer than 24 bits, so its unit is
//     even coarser relative to float64's. What matters is only that
//     float64 is normal, with 53 ≥ 24 + 2 bits, at every magnitude float32
//     rounds at; 28 = 53 - 24 - 1 spare bits is more than the single zero
//     last bit that step 6 needs.
//  5. Fast path: if s has any of its 28 low bits set, RN32(s) = RN32(x).
//     Say x < s (the other case is symmetric). A breakpoint B with
//     x ≤ B < s would give s = RN64(x) ≤ RN64(B) = B < s, since RN64 is
//     monotone and B is a float64; and B = s is excluded by the low bits.
//     So x and s lie in the same interval of step 3. float32(s) is RN32(s).
//  6. Otherwise TwoSum (five more additions and subtractions, exact since
//     nothing overflows) gives e = x - s exactly. If e = 0, s = x. If not, replace s by o = RO64(x),
//     x rounded to odd: of the two float64 values around x, the one with
//     an odd last mantissa bit. The code truncates x towards zero (s, or
//     the float64 next to s towards zero when e has the other sign) and
//     sets the last bit. Now x lies strictly between two adjacent float64
//     values, no breakpoint lies strictly between them (breakpoints are
//     float64 values), and o, which is odd, is not a breakpoint (those are
//     even by step 4). So no breakpoint lies between x and o, both ends
//     included, and RN32(o) = RN32(x). float32(o) is RN32(o).
//
// Zeros: p is ±0 exactly when a or b is, with the sign of a·b, and step 2
// gives the sum's sign. A nonzero x that rounds to zero in float32 keeps
// its sign through float32(s) or float32(o). Infinities: an infinite
// operand makes p or c infinite, and float64 arithmetic gives ±Inf or NaN
// (for 0·∞ and ∞ - ∞) as IEEE 754 does; finite operands never overflow in
// float64 (step 2), and float32(·) overflows to ±Inf exactly at the
// threshold of step 3 (the threshold, being even, is handled by the
// rounding to odd when x is above or below it). NaN: every NaN result is
// the canonical NaN with bits NaN32Bits. Hardware propagates an operand's
// payload, but which operand's depends on the instruction form, so the
// result is made canonical instead; kernels that must match this package
// bit for bit on NaNs have to do the same.
//
// All of this assumes the default floating-point environment, which Go
// programs run in: rounding to nearest, subnormals neither flushed to zero
// nor read as zero. Assembly kernels that set FTZ or DAZ (x86 MXCSR) or FZ
// (arm64 FPCR) would differ from FMA32 on subnormals.
//
// math.FMA is not needed: since p is exact, the float64 addition p + c
// already is the single rounding math.FMA(float64(a), float64(b),
// float64(c)) would give, and on machines without an FMA instruction
// math.FMA is a slow software routine.
//
// # Speed
//
// The fast path is a product, an addition, two conversions and a test of
// the low bits. The slow path is taken when the 28 low bits of the float64
// sum are zero, which includes every sum that is a float32 value (short
// operands, exact results) or a midpoint, and when the sum is not finite;
// for operands with full random significands that is about one case in
// 2^28. FMA32 itself is too large for the compiler to inline (the
// call to the slow path alone costs most of the budget); a kernel that
// needs it inlined can repeat the fast path and call FMA32 on the slow one.
//
// The Go specification lets a compiler fuse x*y + z into one fused
// operation unless an explicit conversion rounds the product. The product
// in FMA32 is written float64(float64(a) * float64(b)) for that reason,
// although, being exact, it would give the same result fused. No other
// product occurs.
//
// # Evidence
//
// TestTinyExhaustive runs the method, operation for operation, on every
// triple of operands of small binary formats with the properties of steps
// 1, 2 and 4 (products exact, the wide format normal over all products and
// sums, wide precision at least twice the narrow one, down to the tightest
// case P = 2p), and compares with an exact integer reference; it also
// checks that plain double rounding fails on those formats, so that the
// halfway cases are really exercised. TestFMA32 compares FMA32 on random
// and adversarial float32 operands (exact and near halfway results, massive
// cancellation, subnormal results, the overflow threshold, signed zeros,
// infinities, NaNs) with two exact references, one using math/big and one
// using 128-bit integers, which it also compares with each other.
// Setting SHOAL_FMA_CASES=N runs N more cases against the integer
// reference (TestFMA32Bulk); FuzzFMA32 is the same comparison as a fuzz
// target.
package fma
