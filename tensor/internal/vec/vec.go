package vec

const errLength = "vec: length mismatch"

// asmReduceMin is the length from which Sum and Dot call the assembly;
// below it the call and the final combination of the lanes cost more than
// they save. Both give the same bits.
const asmReduceMin = 32

// HasAsm reports whether the functions of this package run their AVX2
// assembly (true) or the pure-Go reference loops (false).
func HasAsm() bool { return useAsm }

// Exp sets dst[i] = f32.Exp(x[i]) for every i. dst may be x.
func Exp(dst, x []float32) {
	if len(dst) != len(x) {
		panic(errLength)
	}
	if !useAsm {
		expGo(dst, x)
		return
	}
	expAVX2(dst, x)
}

// ExpSub sets dst[i] = f32.Exp(x[i] - m) for every i, the exponentials of
// a softmax row. dst may be x.
func ExpSub(dst, x []float32, m float32) {
	if len(dst) != len(x) {
		panic(errLength)
	}
	if !useAsm {
		expSubGo(dst, x, m)
		return
	}
	expSubAVX2(dst, x, m)
}

// Tanh sets dst[i] = f32.Tanh(x[i]) for every i. dst may be x.
func Tanh(dst, x []float32) {
	if len(dst) != len(x) {
		panic(errLength)
	}
	if !useAsm {
		tanhGo(dst, x)
		return
	}
	tanhAVX2(dst, x)
}

// GELU computes the tanh approximation of GELU used by GPT-2, as
// tensor.GELUTanh does, and stores the tanh term of every element in th:
//
//	for i, v := range x {
//		x3 := float32(float32(v*v) * v)
//		t := f32.Tanh(float32(geluC * (v + float32(geluK*x3))))
//		th[i] = t
//		dst[i] = float32(float32(0.5*v) * (1 + t))
//	}
//
// with geluC = float32(sqrt(2/pi)) and geluK = float32(0.044715). dst or
// th may be x.
func GELU(dst, th, x []float32) {
	if len(dst) != len(x) || len(th) != len(x) {
		panic(errLength)
	}
	if !useAsm {
		geluGo(dst, th, x)
		return
	}
	geluAVX2(dst, th, x)
}

// Add sets dst[i] = x[i] + y[i] for every i. dst may be x or y.
func Add(dst, x, y []float32) {
	if len(dst) != len(x) || len(y) != len(x) {
		panic(errLength)
	}
	n := 0
	if useAsm && len(x) >= 8 {
		n = len(x) &^ 7
		addAVX2(dst[:n], x[:n], y[:n])
	}
	addGo(dst[n:], x[n:], y[n:])
}

// Mul sets dst[i] = float32(x[i] * y[i]) for every i. dst may be x or y.
func Mul(dst, x, y []float32) {
	if len(dst) != len(x) || len(y) != len(x) {
		panic(errLength)
	}
	n := 0
	if useAsm && len(x) >= 8 {
		n = len(x) &^ 7
		mulAVX2(dst[:n], x[:n], y[:n])
	}
	mulGo(dst[n:], x[n:], y[n:])
}

// Accumulate sets dst[i] += x[i] for every i.
func Accumulate(dst, x []float32) {
	if len(dst) != len(x) {
		panic(errLength)
	}
	n := 0
	if useAsm && len(x) >= 8 {
		n = len(x) &^ 7
		accumulateAVX2(dst[:n], x[:n])
	}
	accumulateGo(dst[n:], x[n:])
}

// AddScaled sets dst[i] += float32(s * x[i]) for every i.
func AddScaled(dst, x []float32, s float32) {
	if len(dst) != len(x) {
		panic(errLength)
	}
	n := 0
	if useAsm && len(x) >= 8 {
		n = len(x) &^ 7
		addScaledAVX2(dst[:n], x[:n], s)
	}
	addScaledGo(dst[n:], x[n:], s)
}

// Scale sets dst[i] = float32(s * x[i]) for every i. dst may be x.
func Scale(dst, x []float32, s float32) {
	if len(dst) != len(x) {
		panic(errLength)
	}
	n := 0
	if useAsm && len(x) >= 8 {
		n = len(x) &^ 7
		scaleAVX2(dst[:n], x[:n], s)
	}
	scaleGo(dst[n:], x[n:], s)
}

// DivScalar sets dst[i] = x[i] / s for every i (a true division, which
// multiplying by 1/s is not). dst may be x.
func DivScalar(dst, x []float32, s float32) {
	if len(dst) != len(x) {
		panic(errLength)
	}
	n := 0
	if useAsm && len(x) >= 8 {
		n = len(x) &^ 7
		divScalarAVX2(dst[:n], x[:n], s)
	}
	divScalarGo(dst[n:], x[n:], s)
}

// Sum returns the sum of x in lane order:
//
//	s[l] = x[l] + x[l+8] + x[l+16] + ...   for l = 0..7, over the first len(x)&^7 elements, in index order
//	t    = ((s[0]+s[1]) + (s[2]+s[3])) + ((s[4]+s[5]) + (s[6]+s[7]))
//	t    = t + x[len(x)&^7] + ... + x[len(x)-1]
//
// The eight lane sums are one vector accumulator, and each lane is a chain
// of dependent additions, so Sum runs at most at eight elements per
// latency of a vector addition (two to four cycles), whatever the
// implementation.
func Sum(x []float32) float32 {
	if !useAsm || len(x) < asmReduceMin {
		return sumGo(x)
	}
	n := len(x) &^ 7
	t := sumAVX2(x[:n])
	for _, v := range x[n:] {
		t += v
	}
	return t
}

// Dot returns the sum of float32(x[i]*y[i]) in the lane order of Sum. Its
// speed has the same bound as Sum's.
func Dot(x, y []float32) float32 {
	if len(x) != len(y) {
		panic(errLength)
	}
	if !useAsm || len(x) < asmReduceMin {
		return dotGo(x, y)
	}
	n := len(x) &^ 7
	t := dotAVX2(x[:n], y[:n])
	for i := n; i < len(x); i++ {
		t += float32(x[i] * y[i])
	}
	return t
}

// Max returns the largest element of x, as the loop
//
//	m := x[0]
//	for _, v := range x[1:] {
//		if v > m || v != v {
//			m = v
//		}
//	}
//
// does: NaN if any element is NaN (the last one), and of equal elements
// (+0 and -0) the first. x must not be empty.
func Max(x []float32) float32 {
	if len(x) == 0 {
		panic("vec: Max of an empty slice")
	}
	if useAsm && len(x) >= 8 {
		n := len(x) &^ 7
		// The vector maximum is exact unless there is a NaN or the
		// maximum is zero, whose sign depends on which zero comes first.
		if m, ok := maxAVX2(x[:n]); ok {
			return maxGo(m, x[n:])
		}
	}
	return maxGo(x[0], x[1:])
}

// AdamW applies the AdamW update of one parameter tensor, element by
// element:
//
//	for j := range w {
//		gj := float32(g[j] * gscale)
//		m[j] = float32(b1*m[j]) + float32((1-b1)*gj)
//		v[j] = float32(b2*v[j]) + float32(float32((1-b2)*gj)*gj)
//		mh := m[j] / c1
//		vh := v[j] / c2
//		w[j] = (w[j] - float32(decay*w[j])) - float32(lr*(mh/(sqrt(vh)+eps)))
//	}
//
// where 1-b1 and 1-b2 are float32 differences and sqrt is the correctly
// rounded float32 square root. w, g, m and v must be distinct slices of
// one length.
func AdamW(w, g, m, v []float32, gscale, b1, b2, c1, c2, lr, decay, eps float32) {
	if len(g) != len(w) || len(m) != len(w) || len(v) != len(w) {
		panic(errLength)
	}
	n := 0
	if useAsm && len(w) >= 8 {
		n = len(w) &^ 7
		adamWAVX2(w[:n], g[:n], m[:n], v[:n], &adamParams{
			gscale: gscale, b1: b1, b2: b2, omb1: 1 - b1, omb2: 1 - b2,
			c1: c1, c2: c2, lr: lr, decay: decay, eps: eps,
		})
	}
	adamWGo(w[n:], g[n:], m[n:], v[n:], gscale, b1, b2, c1, c2, lr, decay, eps)
}

// adamParams holds the scalars of an AdamW update for the assembly, with
// 1-b1 and 1-b2 computed once.
type adamParams struct {
	gscale, b1, b2, omb1, omb2, c1, c2, lr, decay, eps float32
}
