package vec

import (
	"math"
	"os"
	"runtime"
	"sync"
	"testing"
)

// TestExhaustive passes every float32 bit pattern through Exp, Tanh and
// GELU and compares the bits with the scalar reference loops. It takes a
// few minutes on two cores and runs only when VEC_EXHAUSTIVE=1:
//
//	VEC_EXHAUSTIVE=1 go test -run Exhaustive -v -timeout 60m .
func TestExhaustive(t *testing.T) {
	if os.Getenv("VEC_EXHAUSTIVE") != "1" {
		t.Skip("set VEC_EXHAUSTIVE=1 to check all 2^32 inputs")
	}
	if !HasAsm() {
		t.Log("no assembly in this build: the exported functions are the reference loops")
	}
	const chunk, piece = 1 << 16, 61
	type result struct {
		bad   uint64
		first uint32
		got   [2]uint32
		want  [2]uint32
	}
	for _, c := range []struct {
		name   string
		strict bool // NaN results must agree in sign and payload too
		f, ref func(dst, th, x []float32)
	}{
		{"Exp", true,
			func(d, _, x []float32) { Exp(d, x) },
			func(d, _, x []float32) { expGo(d, x) }},
		{"Tanh", true,
			func(d, _, x []float32) { Tanh(d, x) },
			func(d, _, x []float32) { tanhGo(d, x) }},
		{"GELU", false, GELU, geluGo},
	} {
		t.Run(c.name, func(t *testing.T) {
			workers := runtime.GOMAXPROCS(0)
			res := make([]result, workers)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					x := make([]float32, chunk)
					d1, t1 := make([]float32, chunk), make([]float32, chunk)
					d2, t2 := make([]float32, chunk), make([]float32, chunk)
					r := &res[w]
					for base := uint64(w) * chunk; base < 1<<32; base += uint64(workers) * chunk {
						for i := range x {
							x[i] = math.Float32frombits(uint32(base) + uint32(i))
						}
						// Pieces of 61 elements: seven vectors and a masked
						// tail of five lanes, which moves across the inputs.
						for lo := 0; lo < chunk; lo += piece {
							hi := min(lo+piece, chunk)
							c.f(d1[lo:hi], t1[lo:hi], x[lo:hi])
						}
						c.ref(d2, t2, x)
						for i := range x {
							a, b := d1[i], d2[i]
							ta, tb := t1[i], t2[i]
							if !same(a, b, c.strict) || !same(ta, tb, c.strict) {
								if r.bad == 0 || uint32(base)+uint32(i) < r.first {
									r.first = uint32(base) + uint32(i)
									r.got = [2]uint32{bits(a), bits(ta)}
									r.want = [2]uint32{bits(b), bits(tb)}
								}
								r.bad++
							}
						}
					}
				})
			}
			wg.Wait()
			for _, r := range res {
				if r.bad > 0 {
					t.Errorf("%s: %d inputs differ; at x=%#08x: got %#08x (th %#08x), want %#08x (th %#08x)",
						c.name, r.bad, r.first, r.got[0], r.got[1], r.want[0], r.want[1])
				}
			}
		})
	}
}
