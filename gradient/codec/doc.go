// Package codec compresses the pseudo-gradients that workers exchange: an
// update is a list of named float32 tensors in sorted-name order, and a
// Codec turns it into bytes and back.
//
//	c, err := codec.Parse("topk:chunk=4096,k=64,values=int8")
//	b, err := c.Encode(delta, residual)          // residual: error feedback, updated in place
//	ts, err := c.Decode(b, codec.Limits{Expect: specs})
//
// # Codecs
//
//	fp32                       raw IEEE-754 binary32, lossless
//	fp16, bf16                 binary16 / bfloat16, round to nearest even
//	int8:block=B               blocks of B elements, scale = absmax/127, values round-half-even to int8
//	sign:chunk=C               one sign bit per element, scale = mean |x| per chunk of C
//	topk:chunk=C,k=K,values=V  per chunk of C, the K largest |x| (ties to the lower index), V = fp16|int8|2bit
//	dct-topk:chunk=C,k=K,values=V
//	                           per chunk of C, orthonormal DCT-II, then the K largest |coefficients|,
//	                           sent like topk; decoding applies the inverse DCT
//	block-sign:chunk=C,every=D of the chunks of C of each tensor, the ceil(chunks/D) of
//	                           largest L·s² sent as sign (s = mean |x|, L the length), the others not
//
// Parse documents the ranges and defaults of the parameters; String gives a
// codec's canonical spec. Every tensor is flattened (row-major) and split
// into blocks or chunks on its own; the last one of a tensor may be
// shorter, in which case topk and dct-topk send min(K, length) entries and
// dct-topk uses the DCT of that length.
//
// topk and block-sign send only some elements; DecodeSupport lists them,
// so that an aggregation rule can tell an unsent element from a sent zero.
//
// # Contract
//
// Encode encodes x = delta + residual, computed element by element in
// float32 (x = delta if residual is nil). Every element of x must be
// finite and of magnitude below MaxValue (2^64); tensor names must be
// non-empty valid UTF-8 of at most MaxNameLen bytes in strictly increasing
// byte order; shapes have at most MaxRank dimensions, each below 2^32, and
// len(Data) equals their product. Encode refuses anything else and then
// leaves residual untouched. With a residual, Encode replaces it by
// exactly what was not transmitted, residual' = x - y in float32, where y is
// what Decode returns for the encoding (bit for bit). For fp32, fp16, bf16,
// int8 and topk with fp16 or int8 values this subtraction is exact (y is 0
// or within a factor of two of x), so residual' + y == x exactly; the one
// exception is fp16 saturation of |x| >= 2^29. For sign, block-sign, topk
// with 2bit values and dct-topk, residual' is x - y rounded once (exactly
// x where nothing was sent):
// |residual' + y - x| <= 2^-24·|x - y|.
//
// Decode never panics. It rejects, with a *FormatError naming the field,
// every input that breaks a rule of the wire format below: another codec
// or other parameters, truncation, trailing bytes, names out of order,
// oversized or inconsistent headers, indices out of range or out of
// order, non-finite or out-of-range values and scales, nonzero padding.
// The tensors it returns hold finite values only. It reads all headers
// first and checks them against Limits (zero fields take what
// Limits.Expect holds, or DefaultMaxTensors and DefaultMaxElements
// without it), and the exact body length
// the shapes imply against the input length, before it allocates the
// values: one []float32 of the declared total, at most
// Limits.MaxElements, plus headers proportional to the input. Passing
// Limits.Expect (the model's names and shapes) bounds it by the model
// itself. Inspect returns the codec an encoding declares, so that a
// reader can decode without knowing the codec in advance.
//
// Encodings are canonical: a function of the input alone, the same on
// every architecture, with all padding bits zero. The float32 arithmetic
// rounds every product that feeds an addition explicitly
// (float32(a*b) + c) so no compiler may fuse it, sums in a fixed order,
// and takes its cosines from a float64 Taylor series of explicitly
// rounded products (never the standard library's trigonometry). When the
// decoded values are below MaxValue, Decode followed by Encode without
// residual reproduces the input bytes for fp32, fp16, bf16 and sign, and
// the decoded values for topk with fp16 or 2bit values.
//
// # Error bounds
//
// For each element, with x what was encoded and y what decodes:
//
//	fp32      y == x, bit for bit (-0 included).
//	fp16      |y - x| <= 2^-11·|x| for 2^-14 <= |x| < 65520, <= 2^-25 below;
//	          |x| >= 65520 saturates to ±65504 (never infinity).
//	bf16      |y - x| <= 2^-8·|x| for normal x, <= 2^-134 below; saturates at ±0x1.fep63.
//	int8      |y - x| <= (1/2 + 2^-16)·s, s = absmax/127 of the block (float32); a block
//	          whose s would be below 2^-126 is sent as zeros (s = 0).
//	sign      y = ±s, s = mean |x| over the chunk, with the sign bit of x.
//	block-sign  sent chunks as sign; unsent: y = +0 and residual' = x exactly.
//	topk      unsent: y = +0 and residual' = x exactly. Sent: fp16 as above; int8 as
//	          above with s = max |sent|/127 per chunk; 2bit y = ±lo or ±hi (see below).
//	dct-topk  ||y - x||₂ equals, up to float32 rounding, the norm of the unsent
//	          coefficients together with the quantisation error of the sent ones.
//
// # Wire format (version 1)
//
// All integers are little-endian; floats are IEEE-754 bit patterns.
//
//	u8   version = 1
//	u8   codec ID: 1 fp32, 2 fp16, 3 bf16, 4 int8, 5 topk, 6 sign, 7 dct-topk, 8 block-sign
//	     parameters:
//	       fp32, fp16, bf16:   none
//	       int8:               u32 block
//	       sign:               u32 chunk
//	       topk, dct-topk:     u32 chunk, u32 k, u8 values (1 fp16, 2 int8, 3 2bit)
//	       block-sign:         u32 chunk, u32 every
//	u32  number of tensors T
//	T ×  tensor header:  u16 name length, name bytes, u8 rank, rank × u32 dimension
//	T ×  tensor body, in the same order; n below is the tensor's element count
//
// Names are 1 to MaxNameLen bytes of valid UTF-8 in strictly increasing
// byte order; rank is at most MaxRank (0 for a scalar, n = 1); n is at
// most MaxTensorElements. For example, fp16 of one tensor "w" of shape [2]
// holding 1 and -2 is
//
//	01 02 01000000 0100 77 01 02000000 003c 00c0
//
// Bodies:
//
//	fp32      n × u32 binary32; values that are not finite or of magnitude >= 2^64 are rejected
//	fp16      n × u16 binary16; exponent 31 (inf, NaN) is rejected
//	bf16      n × u16 bfloat16; values that are not finite or of magnitude >= 2^64 are rejected
//	int8      per block of L = min(B, rest) elements: f32 scale, then L × i8.
//	          The scale is +0 or a normal float32 below 2^80; -128 is rejected; a zero
//	          scale requires all values zero, a nonzero one a largest |value| of 127.
//	          Element = float32(q) · scale.
//	sign      per chunk of L = min(C, rest) elements: f32 scale (non-negative, below
//	          2^64, not -0), then ceil(L/8) bytes of sign bits, bit j of the chunk in
//	          byte j/8 at bit j%8 (least significant first), 1 = negative, padding zero.
//	          Element = -scale or +scale.
//	topk,     per chunk of L = min(C, rest) elements, a record of m = min(K, L)
//	dct-topk  entries:
//	            scales: int8: f32 s (as for int8 above);
//	                    2bit: f32 lo, f32 hi, 0 <= lo <= hi < 2^80;
//	                    fp16: none
//	            then a bit stream, least significant bit first, zero-padded to a byte:
//	              m indices of ceil(log2 C) bits each, strictly increasing, < L;
//	              m value codes: fp16: 16-bit binary16 (finite);
//	                             int8: 8-bit two's complement q (-128 rejected; largest |q|
//	                                   127 unless s = 0, then all 0), value float32(q)·s;
//	                             2bit: bit 0 sign (1 = negative), bit 1 level (1 = hi),
//	                                   value ±lo or ±hi.
//	          For topk the entries are the chunk's elements; unsent ones decode to +0.
//	          For dct-topk they are the DCT-II coefficients of the chunk (of length L);
//	          the chunk decodes to the inverse DCT of the sent coefficients.
//
//	block-sign
//	          with nc = ceil(n/C) chunks and m = ceil(nc/D) of them sent: a map of
//	          ceil(nc/8) bytes, bit c (byte c/8, bit c%8, least significant first) set
//	          if chunk c is sent, exactly m bits set, padding zero; then per sent
//	          chunk, in increasing order, a record of f32 scale (as for sign) and
//	          ceil(C/8) bytes of sign bits as for sign, bits past the chunk's length
//	          L (a tensor's last chunk may be shorter) zero. The body's length
//	          depends on n alone. Unsent chunks decode to +0.
//
// How the encoder computes what it sends, so that every implementation
// produces the same bytes:
//
//   - int8 scale: s = float32(absmax)/127 in float32, replaced by 0 if below
//     2^-126; q = round-half-even(x/s), the division in float32.
//   - sign scale: the sum of |x| over the chunk in float64, in index order,
//     divided by L in float64, rounded to float32; bit = sign bit of x.
//   - block-sign: each chunk's scale s as for sign, its gain
//     float64(s)·float64(s)·L in float64 (products only); the m chunks of
//     largest gain, ties to the lower chunk index.
//   - top-k: the m entries of largest magnitude, ties to the lower index;
//     for int8 values s = max |sent|/127 as above.
//   - 2bit levels: with m the mean of the sent magnitudes (float64, in index
//     order, capped at their maximum), entries with magnitude >= m form the
//     high group and the others the low group; hi and lo are the mean
//     magnitudes of the groups in float64, rounded to float32 (lo = 0 if its
//     group is empty).
//   - DCT of length L: B[k][i] = float32(s(k)·cos(π(2i+1)k/(2L))) with
//     s(0) = sqrt(1/L), s(k) = sqrt(2/L), the product in float64, the cosine
//     from the float64 Taylor series of cos or sin (whichever has the
//     argument in [0, π/4]) with explicitly rounded products. Coefficient
//     X[k] = tensor.Dot(B[k], x) (its fixed lane order, products rounded).
//     Inverse: y starts at +0 and, for each sent k in increasing order and
//     each i, y[i] = float32(X̂[k]·B[k][i]) + y[i].
//
// Error feedback is in the parameter domain for every codec: for dct-topk
// the residual is x minus the inverse transform of what was sent.
package codec
