package vec

import (
	"math"

	"github.com/shoal-network/shoal/tensor/internal/f32"
)

// The reference loops. They define the results of the exported functions
// and run when there is no assembly; the tests compare every other
// implementation against them. Lengths are checked by the callers.
//
// Every product that feeds an addition or subtraction is written
// float32(a*b) so that no compiler may fuse the two into one instruction.

const (
	geluC = float32(0.7978845608028654) // sqrt(2/pi)
	geluK = float32(0.044715)
)

func expGo(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = f32.Exp(v)
	}
}

func expSubGo(dst, x []float32, m float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = f32.Exp(v - m)
	}
}

func tanhGo(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = f32.Tanh(v)
	}
}

func geluGo(dst, th, x []float32) {
	dst = dst[:len(x)]
	th = th[:len(x)]
	for i, v := range x {
		x3 := float32(float32(v*v) * v)
		t := f32.Tanh(float32(geluC * (v + float32(geluK*x3))))
		th[i] = t
		dst[i] = float32(float32(0.5*v) * (1 + t))
	}
}

func addGo(dst, x, y []float32) {
	dst = dst[:len(x)]
	y = y[:len(x)]
	for i, v := range x {
		dst[i] = v + y[i]
	}
}

func mulGo(dst, x, y []float32) {
	dst = dst[:len(x)]
	y = y[:len(x)]
	for i, v := range x {
		dst[i] = float32(v * y[i])
	}
}

func accumulateGo(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] += v
	}
}

func addScaledGo(dst, x []float32, s float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] += float32(s * v)
	}
}

func scaleGo(dst, x []float32, s float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = float32(s * v)
	}
}

func divScalarGo(dst, x []float32, s float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = v / s
	}
}

func sumGo(x []float32) float32 {
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	n := len(x) &^ 7
	for i := 0; i < n; i += 8 {
		v := x[i : i+8 : i+8]
		s0 += v[0]
		s1 += v[1]
		s2 += v[2]
		s3 += v[3]
		s4 += v[4]
		s5 += v[5]
		s6 += v[6]
		s7 += v[7]
	}
	t := ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
	for _, v := range x[n:] {
		t += v
	}
	return t
}

func dotGo(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	n := len(x) &^ 7
	for i := 0; i < n; i += 8 {
		a := x[i : i+8 : i+8]
		b := y[i : i+8 : i+8]
		s0 += float32(a[0] * b[0])
		s1 += float32(a[1] * b[1])
		s2 += float32(a[2] * b[2])
		s3 += float32(a[3] * b[3])
		s4 += float32(a[4] * b[4])
		s5 += float32(a[5] * b[5])
		s6 += float32(a[6] * b[6])
		s7 += float32(a[7] * b[7])
	}
	t := ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
	for i := n; i < len(x); i++ {
		t += float32(x[i] * y[i])
	}
	return t
}

// maxGo continues the scan of Max from the running maximum m.
func maxGo(m float32, x []float32) float32 {
	for _, v := range x {
		if v > m || v != v {
			m = v
		}
	}
	return m
}

func adamWGo(w, g, m, v []float32, gscale, b1, b2, c1, c2, lr, decay, eps float32) {
	g = g[:len(w)]
	m = m[:len(w)]
	v = v[:len(w)]
	for j := range w {
		gj := float32(g[j] * gscale)
		m[j] = float32(b1*m[j]) + float32((1-b1)*gj)
		v[j] = float32(b2*v[j]) + float32(float32((1-b2)*gj)*gj)
		mh := m[j] / c1
		vh := v[j] / c2
		w[j] = (w[j] - float32(decay*w[j])) - float32(lr*(mh/(sqrt32(vh)+eps)))
	}
}

// sqrt32 is the correctly rounded float32 square root (rounding the float64
// square root to float32 is exact for this operation).
func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }
