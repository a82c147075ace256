package codec

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/shoal-network/shoal/tensor"
)

// The orthonormal DCT-II of size n has the basis
//
//	B[k][i] = s(k) · cos(π·(2i+1)·k / (2n)),  s(0) = sqrt(1/n), s(k>0) = sqrt(2/n),
//
// each entry computed in float64 and rounded once to float32. The forward
// transform is X[k] = tensor.Dot(B[k], x); the inverse of the sent
// coefficients accumulates y[i] += float32(X[k]·B[k][i]) over the sent k in
// increasing order. The cosines come from cosQuarter, which uses only
// float64 additions and explicitly rounded products, so every architecture
// computes the same table.

// Taylor coefficients (-1)^i/(2i)! and (-1)^i/(2i+1)!; on [0, π/4] the
// first omitted terms are below 2^-60.
var (
	cosCoef = [...]float64{
		1, -1.0 / 2, 1.0 / 24, -1.0 / 720, 1.0 / 40320, -1.0 / 3628800,
		1.0 / 479001600, -1.0 / 87178291200, 1.0 / 20922789888000,
		-1.0 / 6402373705728000, 1.0 / 2432902008176640000,
	}
	sinCoef = [...]float64{
		1, -1.0 / 6, 1.0 / 120, -1.0 / 5040, 1.0 / 362880, -1.0 / 39916800,
		1.0 / 6227020800, -1.0 / 1307674368000, 1.0 / 355687428096000,
		-1.0 / 121645100408832000, 1.0 / 51090942171709440000,
	}
)

// poly evaluates c[0] + z·(c[1] + z·(...)), rounding every product.
func poly(c []float64, z float64) float64 {
	p := c[len(c)-1]
	for i := len(c) - 2; i >= 0; i-- {
		p = float64(p*z) + c[i]
	}
	return p
}

// cosQuarter returns cos(π·j/(2n)) for 0 ≤ j ≤ n, from the Taylor series
// of cos or (above π/4) sin of an angle in [0, π/4].
func cosQuarter(j, n int) float64 {
	sine := 2*j > n
	if sine {
		j = n - j
	}
	phi := float64(math.Pi*float64(j)) / float64(2*n)
	z := float64(phi * phi)
	if sine {
		return float64(phi * poly(sinCoef[:], z))
	}
	return poly(cosCoef[:], z)
}

// quarterTables caches, for each size n, cos(π·j/(2n)) for j = 0..n. It
// holds at most about 4 MB in all, whatever sizes a peer sends.
var quarterTables [MaxDCTChunk + 1]atomic.Pointer[[]float64]

func quarter(n int) []float64 {
	if p := quarterTables[n].Load(); p != nil {
		return *p
	}
	t := make([]float64, n+1)
	for j := range t {
		t[j] = cosQuarter(j, n)
	}
	quarterTables[n].Store(&t)
	return t
}

// basisRow writes B[k][0..n) of the size-n DCT into row.
func basisRow(row []float32, n, k int) {
	t := quarter(n)
	s := math.Sqrt(2 / float64(n))
	if k == 0 {
		s = math.Sqrt(1 / float64(n))
	}
	// cos(π·m/(2n)) with m = (2i+1)·k reduced modulo 4n.
	m, step, period := k, 2*k, 4*n
	for i := range row[:n] {
		var cs float64
		switch {
		case m <= n:
			cs = t[m]
		case m <= 2*n:
			cs = -t[2*n-m]
		case m < 3*n:
			cs = -t[m-2*n]
		default:
			cs = t[4*n-m] // cos(π/2) is +0 here, never -0
		}
		row[i] = float32(s * cs)
		m += step
		if m >= period {
			m -= period
		}
	}
}

// basisMatrix fills b (n·n) with the size-n basis, row k at b[k·n:].
func basisMatrix(b []float32, n int) {
	for k := range n {
		basisRow(b[k*n:(k+1)*n], n, k)
	}
}

// fullBasis returns the chunk×chunk basis, building it on first use.
func (c *codec) fullBasis() []float32 {
	c.basis.once.Do(func() {
		c.basis.m = make([]float32, c.chunk*c.chunk)
		basisMatrix(c.basis.m, c.chunk)
	})
	return c.basis.m
}

// partialBasis returns the basis of a last chunk of n < chunk elements.
func (e *encoder) partialBasis(n int) []float32 {
	if e.partL != n {
		if cap(e.part) < n*n {
			e.part = make([]float32, n*n)
		}
		e.part = e.part[:n*n]
		basisMatrix(e.part, n)
		e.partL = n
	}
	return e.part
}

// addRow accumulates y[i] += float32(a·row[i]).
func addRow(y, row []float32, a float32) {
	row = row[:len(y)]
	for i, b := range row {
		y[i] = float32(a*b) + y[i]
	}
}

func (c *codec) encodeDCT(e *encoder, dst []byte, d, r []float32) {
	for base := 0; base < len(d); base += c.chunk {
		end := min(base+c.chunk, len(d))
		n := end - base
		xs := e.x[:n]
		copy(xs, d[base:end])
		if r != nil {
			for j, rv := range r[base:end] {
				xs[j] += rv
			}
		}
		var b []float32
		if n == c.chunk {
			b = c.fullBasis()
		} else {
			b = e.partialBasis(n)
		}
		coef := e.coef[:n]
		for k := range coef {
			coef[k] = tensor.Dot(b[k*n:(k+1)*n], xs)
		}
		sel := e.top(coef, min(c.k, n))
		rl := c.recordLen(len(sel))
		c.putRecord(e, dst[:rl], coef, sel)
		dst = dst[rl:]
		if r != nil {
			y := e.y[:n]
			clear(y)
			for i, k := range sel {
				addRow(y, b[int(k)*n:(int(k)+1)*n], e.yv[i])
			}
			rr := r[base:end]
			for j := range rr {
				rr[j] = xs[j] - y[j]
			}
		}
	}
}

func (c *codec) decodeDCT(d *decoder, src []byte, out []float32) (string, string) {
	var full []float32
	for base := 0; base < len(out); base += c.chunk {
		end := min(base+c.chunk, len(out))
		n := end - base
		kk := min(c.k, n)
		rl := c.recordLen(kk)
		if field, msg := c.getRecord(d, src[:rl], n, kk); msg != "" {
			return field, fmt.Sprintf("chunk %d: %s", base/c.chunk, msg)
		}
		src = src[rl:]
		y := out[base:end]
		if n == c.chunk && full == nil && (len(out)/c.chunk)*c.k >= c.chunk {
			// Enough full chunks that the matrix costs less than the rows.
			full = c.fullBasis()
		}
		for i, k := range d.sel[:kk] {
			var row []float32
			if n == c.chunk && full != nil {
				row = full[int(k)*n : (int(k)+1)*n]
			} else {
				row = d.row[:n]
				basisRow(row, n, int(k))
			}
			addRow(y, row, d.yv[i])
		}
	}
	return "", ""
}
