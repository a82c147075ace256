package tensor

import (
	"math"

	"github.com/shoal-network/shoal/tensor/internal/f32"
	"github.com/shoal-network/shoal/tensor/internal/vec"
)

// The element-wise kernels below write dst[i] from the inputs at i; the
// gradient kernels accumulate: dx[i] += (local derivative) * dy[i].

func checkLen2(a, b []float32) {
	if len(a) != len(b) {
		panic("tensor: length mismatch")
	}
}

func checkLen3(a, b, c []float32) {
	if len(a) != len(b) || len(a) != len(c) {
		panic("tensor: length mismatch")
	}
}

const (
	geluC = float32(0.7978845608028654) // sqrt(2/pi)
	geluK = float32(0.044715)
)

// GELU computes the tanh approximation used by GPT-2:
//
//	dst[i] = 0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3)))
func GELU(dst, x []float32) {
	checkLen2(dst, x)
	for i, v := range x {
		dst[i] = float32(float32(0.5*v) * (1 + geluTanh(v)))
	}
}

// GELUTanh computes GELU and stores in th the tanh term of every element,
// for GELUGradTanh.
func GELUTanh(dst, th, x []float32) {
	checkLen3(dst, th, x)
	vec.GELU(dst, th, x)
}

// geluTanh returns tanh(sqrt(2/pi)*(x + 0.044715*x^3)).
func geluTanh(v float32) float32 {
	x3 := float32(float32(v*v) * v)
	return f32.Tanh(float32(geluC * (v + float32(geluK*x3))))
}

// GELUGrad accumulates dx[i] += gelu'(x[i]) * dy[i], where
//
//	gelu'(x) = 0.5*(1+t) + 0.5*x*(1-t^2)*sqrt(2/pi)*(1 + 3*0.044715*x^2),  t = tanh(sqrt(2/pi)*(x + 0.044715*x^3))
func GELUGrad(dx, x, dy []float32) {
	checkLen3(dx, x, dy)
	for i, v := range x {
		dx[i] += float32(geluDeriv(v, geluTanh(v)) * dy[i])
	}
}

// GELUGradTanh is GELUGrad with the tanh terms th that GELUTanh stored;
// it gives the same bits.
func GELUGradTanh(dx, x, th, dy []float32) {
	checkLen3(dx, x, dy)
	th = th[:len(x)]
	for i, v := range x {
		dx[i] += float32(geluDeriv(v, th[i]) * dy[i])
	}
}

func geluDeriv(v, t float32) float32 {
	x2 := float32(v * v)
	du := float32(geluC * (1 + float32(float32(3*geluK)*x2)))
	return float32(0.5*(1+t)) + float32(float32(float32(0.5*v)*(1-float32(t*t)))*du)
}

// ReLU computes dst[i] = max(x[i], 0).
func ReLU(dst, x []float32) {
	checkLen2(dst, x)
	for i, v := range x {
		if v > 0 {
			dst[i] = v
		} else {
			dst[i] = 0
		}
	}
}

// ReLUGrad accumulates dx[i] += dy[i] where x[i] > 0.
func ReLUGrad(dx, x, dy []float32) {
	checkLen3(dx, x, dy)
	for i, v := range x {
		if v > 0 {
			dx[i] += dy[i]
		}
	}
}

// Tanh computes dst[i] = tanh(x[i]).
func Tanh(dst, x []float32) {
	checkLen2(dst, x)
	vec.Tanh(dst, x)
}

// TanhGrad accumulates dx[i] += (1 - y[i]^2) * dy[i], where y = tanh(x).
func TanhGrad(dx, y, dy []float32) {
	checkLen3(dx, y, dy)
	for i, v := range y {
		dx[i] += float32((1 - float32(v*v)) * dy[i])
	}
}

// Exp computes dst[i] = e^x[i].
func Exp(dst, x []float32) {
	checkLen2(dst, x)
	vec.Exp(dst, x)
}

// ExpGrad accumulates dx[i] += y[i] * dy[i], where y = exp(x).
func ExpGrad(dx, y, dy []float32) {
	checkLen3(dx, y, dy)
	for i, v := range y {
		dx[i] += float32(v * dy[i])
	}
}

// Log computes dst[i] = ln x[i].
func Log(dst, x []float32) {
	checkLen2(dst, x)
	for i, v := range x {
		dst[i] = f32.Log(v)
	}
}

// LogGrad accumulates dx[i] += dy[i] / x[i].
func LogGrad(dx, x, dy []float32) {
	checkLen3(dx, x, dy)
	for i, v := range x {
		dx[i] += dy[i] / v
	}
}

// Scale computes dst[i] = s * x[i].
func Scale(dst, x []float32, s float32) {
	checkLen2(dst, x)
	vec.Scale(dst, x, s)
}

// AddScaled accumulates dst[i] += s * x[i].
func AddScaled(dst, x []float32, s float32) {
	checkLen2(dst, x)
	vec.AddScaled(dst, x, s)
}

// Accumulate computes dst[i] += x[i].
func Accumulate(dst, x []float32) {
	checkLen2(dst, x)
	vec.Accumulate(dst, x)
}

// axisSplit returns the sizes (outer, n, inner) that view a tensor of the
// given shape as [outer, n, inner] with n the size of axis.
func axisSplit(shape []int, axis int) (outer, n, inner int) {
	if axis < 0 {
		axis += len(shape)
	}
	if axis < 0 || axis >= len(shape) {
		panic("tensor: axis out of range")
	}
	outer, inner = 1, 1
	for _, d := range shape[:axis] {
		outer *= d
	}
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	return outer, shape[axis], inner
}

// forRows calls f for every row of a tensor viewed as [outer, n, inner]:
// the n elements at base, base+inner, ..., gathered into contiguous
// scratch rows when inner > 1 and scattered back afterwards for the
// outputs. Rows are visited in (outer, inner) order.
func forRows(outer, n, inner int, ins [][]float32, outs [][]float32, f func(ins, outs [][]float32)) {
	if inner == 1 {
		rin := make([][]float32, len(ins))
		rout := make([][]float32, len(outs))
		for o := 0; o < outer; o++ {
			for k, s := range ins {
				rin[k] = s[o*n : (o+1)*n : (o+1)*n]
			}
			for k, s := range outs {
				rout[k] = s[o*n : (o+1)*n : (o+1)*n]
			}
			f(rin, rout)
		}
		return
	}
	rin := make([][]float32, len(ins))
	rout := make([][]float32, len(outs))
	for k := range rin {
		rin[k] = make([]float32, n)
	}
	for k := range rout {
		rout[k] = make([]float32, n)
	}
	for o := 0; o < outer; o++ {
		for in := 0; in < inner; in++ {
			base := o*n*inner + in
			for k, s := range ins {
				for j := 0; j < n; j++ {
					rin[k][j] = s[base+j*inner]
				}
			}
			for k, s := range outs {
				for j := 0; j < n; j++ {
					rout[k][j] = s[base+j*inner]
				}
			}
			f(rin, rout)
			for k, s := range outs {
				for j := 0; j < n; j++ {
					s[base+j*inner] = rout[k][j]
				}
			}
		}
	}
}

// softmaxRow computes y = exp(x - max x) / sum(exp(x - max x)).
func softmaxRow(y, x []float32) {
	m := Max(x)
	vec.ExpSub(y, x, m)
	vec.DivScalar(y, y, Sum(y))
}

// logSoftmaxRow computes y = x - max x - log(sum(exp(x - max x))), using y
// as scratch for the exponentials.
func logSoftmaxRow(y, x []float32) {
	m := Max(x)
	vec.ExpSub(y, x, m)
	lse := f32.Log(Sum(y))
	for j, v := range x {
		y[j] = (v - m) - lse
	}
}

// Softmax computes the softmax of x along the middle axis of the view
// [outer, n, inner]: for every row r of n elements,
//
//	m = max r;  e[j] = exp(r[j] - m);  dst[j] = e[j] / Sum(e)
//
// A row holding -Inf is fine as long as one element is finite.
func Softmax(dst, x []float32, outer, n, inner int) {
	checkRows(len(dst), outer, n, inner)
	checkRows(len(x), outer, n, inner)
	forRows(outer, n, inner, [][]float32{x}, [][]float32{dst}, func(in, out [][]float32) {
		softmaxRow(out[0], in[0])
	})
}

// SoftmaxGrad accumulates, per row, dx[j] += y[j] * (dy[j] - Dot(dy, y)),
// where y is the softmax output.
func SoftmaxGrad(dx, y, dy []float32, outer, n, inner int) {
	checkRows(len(dx), outer, n, inner)
	checkRows(len(y), outer, n, inner)
	checkRows(len(dy), outer, n, inner)
	forRows(outer, n, inner, [][]float32{y, dy}, [][]float32{dx}, func(in, out [][]float32) {
		yr, dyr, dxr := in[0], in[1], out[0]
		s := Dot(dyr, yr)
		for j := range yr {
			dxr[j] += float32(yr[j] * (dyr[j] - s))
		}
	})
}

// LogSoftmax computes, per row of the view [outer, n, inner],
//
//	dst[j] = (r[j] - m) - log(Sum(exp(r - m))),  m = max r
func LogSoftmax(dst, x []float32, outer, n, inner int) {
	checkRows(len(dst), outer, n, inner)
	checkRows(len(x), outer, n, inner)
	forRows(outer, n, inner, [][]float32{x}, [][]float32{dst}, func(in, out [][]float32) {
		logSoftmaxRow(out[0], in[0])
	})
}

// LogSoftmaxGrad accumulates, per row, dx[j] += dy[j] - exp(y[j]) * Sum(dy),
// where y is the log-softmax output.
func LogSoftmaxGrad(dx, y, dy []float32, outer, n, inner int) {
	checkRows(len(dx), outer, n, inner)
	checkRows(len(y), outer, n, inner)
	checkRows(len(dy), outer, n, inner)
	forRows(outer, n, inner, [][]float32{y, dy}, [][]float32{dx}, func(in, out [][]float32) {
		yr, dyr, dxr := in[0], in[1], out[0]
		s := Sum(dyr)
		for j := range yr {
			dxr[j] += dyr[j] - float32(f32.Exp(yr[j])*s)
		}
	})
}

func checkRows(length, outer, n, inner int) {
	if length != outer*n*inner {
		panic("tensor: length does not match rows")
	}
}

// LayerNorm normalises each row of d elements of x:
//
//	mean = Sum(x)/d;  c = x - mean;  var = Dot(c, c)/d;  rstd = 1/sqrt(var + eps)
//	dst[j] = (c[j]*rstd)*gamma[j] + beta[j]
//
// and stores mean and rstd per row (len(x)/d each) for the backward pass.
func LayerNorm(dst, mean, rstd, x, gamma, beta []float32, d int, eps float32) {
	checkLen2(dst, x)
	if d <= 0 || len(x)%d != 0 || len(gamma) != d || len(beta) != d || len(mean) != len(x)/d || len(rstd) != len(x)/d {
		panic("tensor: LayerNorm shape mismatch")
	}
	for r := 0; r < len(x)/d; r++ {
		xr := x[r*d : (r+1)*d : (r+1)*d]
		yr := dst[r*d : (r+1)*d : (r+1)*d]
		m := Sum(xr) / float32(d)
		for j, v := range xr {
			yr[j] = v - m
		}
		v := Dot(yr, yr) / float32(d)
		rs := 1 / sqrt32(v+eps)
		for j, c := range yr {
			yr[j] = float32(float32(c*rs)*gamma[j]) + beta[j]
		}
		mean[r], rstd[r] = m, rs
	}
}

// LayerNormGrad accumulates the gradients of LayerNorm: with
// xhat = (x - mean)*rstd and g = dy*gamma per row,
//
//	dgamma[j] += dy[j]*xhat[j];  dbeta[j] += dy[j]
//	dx[j] += rstd * ((g[j] - Sum(g)/d) - xhat[j]*(Dot(g, xhat)/d))
//
// scratch must hold 2*d elements. dx, dgamma or dbeta may be nil when that
// gradient is not wanted.
func LayerNormGrad(dx, dgamma, dbeta, x, gamma, mean, rstd, dy, scratch []float32, d int) {
	rows := len(x) / d
	if len(dy) != len(x) || len(mean) != rows || len(rstd) != rows || len(scratch) < 2*d {
		panic("tensor: LayerNormGrad shape mismatch")
	}
	xhat, g := scratch[:d:d], scratch[d:2*d:2*d]
	for r := 0; r < rows; r++ {
		xr := x[r*d : (r+1)*d : (r+1)*d]
		dyr := dy[r*d : (r+1)*d : (r+1)*d]
		m, rs := mean[r], rstd[r]
		for j, v := range xr {
			xhat[j] = float32((v - m) * rs)
			g[j] = float32(dyr[j] * gamma[j])
		}
		if dgamma != nil {
			for j := range xhat {
				dgamma[j] += float32(dyr[j] * xhat[j])
			}
		}
		if dbeta != nil {
			for j := range dyr {
				dbeta[j] += dyr[j]
			}
		}
		if dx != nil {
			mg := Sum(g) / float32(d)
			mgx := Dot(g, xhat) / float32(d)
			dxr := dx[r*d : (r+1)*d : (r+1)*d]
			for j := range dxr {
				dxr[j] += float32(rs * ((g[j] - mg) - float32(xhat[j]*mgx)))
			}
		}
	}
}

// sqrt32 is the correctly rounded float32 square root (rounding the float64
// square root to float32 is exact for this operation).
func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// CrossEntropy computes, for every row r of v logits, the softmax (stored
// in probs) and returns the sum over rows, in row order and in float64, of
// -log softmax(row)[targets[r]] computed as log(Sum(exp(row - m))) - (row[t] - m).
func CrossEntropy(probs, logits []float32, targets []int32, v int) float64 {
	rows := len(targets)
	if len(logits) != rows*v || len(probs) != rows*v {
		panic("tensor: CrossEntropy shape mismatch")
	}
	var total float64
	for r := 0; r < rows; r++ {
		t := int(targets[r])
		if t < 0 || t >= v {
			panic("tensor: CrossEntropy target out of range")
		}
		xr := logits[r*v : (r+1)*v : (r+1)*v]
		pr := probs[r*v : (r+1)*v : (r+1)*v]
		m := Max(xr)
		vec.ExpSub(pr, xr, m)
		s := Sum(pr)
		lse := f32.Log(s)
		total += float64(lse - (xr[t] - m))
		vec.DivScalar(pr, pr, s)
	}
	return total
}

// CrossEntropyGrad accumulates dlogits[r,j] += scale*(probs[r,j] - [j == targets[r]]).
func CrossEntropyGrad(dlogits, probs []float32, targets []int32, v int, scale float32) {
	if len(dlogits) != len(probs) || len(probs) != len(targets)*v {
		panic("tensor: CrossEntropyGrad shape mismatch")
	}
	for r, t := range targets {
		pr := probs[r*v : (r+1)*v : (r+1)*v]
		dr := dlogits[r*v : (r+1)*v : (r+1)*v]
		for j, p := range pr {
			if j == int(t) {
				p--
			}
			dr[j] += float32(scale * p)
		}
	}
}

// SoftTargetKL computes, for every row r of v student logits x and v
// teacher logits z (all finite), the temperature-softened distributions
//
//	q = softmax(x/T),  p = softmax(z/T)
//
// each as CrossEntropy computes a softmax (true divisions by T, then Max,
// exp(row - m), Sum and a division by the sum), and returns the sum over
// rows, in row order and in float64, of KL(p || q) = Dot(p, log p - log q).
// With mp, mq the maxima of z/T and x/T and lp, lq the logs of the sums of
// exponentials,
//
//	log p[j] - log q[j] = (z[j]/T - x[j]/T) + ((mq - mp) + (lq - lp))
//
// which is evaluated in that order rather than as the difference of two
// log-softmax values: when the student is close to the teacher the
// differences are small and nearly exact, and what rounding is left comes
// from the two logs of sums (a few 1e-8) rather than from log-probabilities
// as large as the range of the logits. Equal rows give exactly zero.
//
// It stores q - p in diff, which is all the gradient needs. scratch must
// hold 2*v elements.
func SoftTargetKL(diff, scratch, logits, teacher []float32, v int, temperature float32) float64 {
	if v <= 0 || len(logits)%v != 0 || len(teacher) != len(logits) || len(diff) != len(logits) || len(scratch) < 2*v {
		panic("tensor: SoftTargetKL shape mismatch")
	}
	if !(temperature > 0) {
		panic("tensor: SoftTargetKL temperature must be positive")
	}
	p, d := scratch[:v:v], scratch[v:2*v:2*v]
	var total float64
	for r := 0; r < len(logits)/v; r++ {
		xr := logits[r*v : (r+1)*v : (r+1)*v]
		zr := teacher[r*v : (r+1)*v : (r+1)*v]
		qr := diff[r*v : (r+1)*v : (r+1)*v]
		mq, lq := softenRow(qr, xr, temperature)
		mp, lp := softenRow(p, zr, temperature)
		c := (mq - mp) + (lq - lp)
		for j := range d {
			d[j] = (zr[j]/temperature - xr[j]/temperature) + c
		}
		total += float64(Dot(p, d))
		for j := range qr {
			qr[j] -= p[j]
		}
	}
	return total
}

// softenRow sets y = softmax(x/t) and returns the maximum m of x/t and
// lse = log(Sum(exp(x/t - m))), so that log y[j] = (x[j]/t - m) - lse. The
// quotients x[j]/t are correctly rounded divisions, the same bits whether
// vec or plain Go computes them, so callers may compute them again one at
// a time.
func softenRow(y, x []float32, t float32) (m, lse float32) {
	vec.DivScalar(y, x, t)
	m = Max(y)
	vec.ExpSub(y, y, m)
	s := Sum(y)
	vec.DivScalar(y, y, s)
	return m, f32.Log(s)
}

// SoftTargetKLGrad accumulates dlogits[i] += float32(scale * diff[i]).
// The gradient of SoftTargetKL's sum with respect to the student's logits
// is diff/T, so scale is the gradient with respect to that sum divided by
// T.
func SoftTargetKLGrad(dlogits, diff []float32, scale float32) {
	checkLen2(dlogits, diff)
	vec.AddScaled(dlogits, diff, scale)
}

// MaskCausal copies x, viewed as [rows, t, t] matrices, into dst with every
// element above the diagonal (column > row) set to -Inf.
func MaskCausal(dst, x []float32, t int) {
	checkLen2(dst, x)
	if t <= 0 || len(x)%(t*t) != 0 {
		panic("tensor: MaskCausal shape mismatch")
	}
	ninf := float32(math.Inf(-1))
	for b := 0; b < len(x); b += t * t {
		for i := 0; i < t; i++ {
			row := b + i*t
			copy(dst[row:row+i+1], x[row:row+i+1])
			for j := i + 1; j < t; j++ {
				dst[row+j] = ninf
			}
		}
	}
}

// MaskCausalGrad accumulates dx += dy at and below the diagonal.
func MaskCausalGrad(dx, dy []float32, t int) {
	checkLen2(dx, dy)
	for b := 0; b < len(dy); b += t * t {
		for i := 0; i < t; i++ {
			row := b + i*t
			Accumulate(dx[row:row+i+1], dy[row:row+i+1])
		}
	}
}

// Embedding gathers rows: dst[r,:] = table[ids[r],:], with rows of d elements.
func Embedding(dst, table []float32, ids []int32, d int) {
	if len(dst) != len(ids)*d || len(table)%d != 0 {
		panic("tensor: Embedding shape mismatch")
	}
	n := int32(len(table) / d)
	for r, id := range ids {
		if id < 0 || id >= n {
			panic("tensor: Embedding index out of range")
		}
		copy(dst[r*d:(r+1)*d], table[int(id)*d:int(id+1)*d])
	}
}

// EmbeddingGrad accumulates dtable[ids[r],:] += dy[r,:] in row order.
func EmbeddingGrad(dtable, dy []float32, ids []int32, d int) {
	for r, id := range ids {
		Accumulate(dtable[int(id)*d:int(id+1)*d], dy[r*d:(r+1)*d])
	}
}
