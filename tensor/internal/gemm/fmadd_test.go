package gemm

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shoal-network/shoal/tensor/internal/fma"
)

// TestFmadd checks fmadd against fma.FMA32. Most of the cases are ones where
// rounding the product before adding it gives other bits, so the test fails
// if the compiler did not fuse (on the builds where fmadd counts on it) or
// fused only sometimes.
func TestFmadd(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	differ := 0
	for i := 0; i < 200_000; i++ {
		// Full-precision operands whose product nearly cancels c: the
		// separately rounded product then loses the bits that matter.
		a := float32(r.Float64()*2 - 1)
		b := float32(r.Float64()*2 - 1)
		c := -float32(float64(a) * float64(b))
		if i%4 == 1 {
			c = math.Nextafter32(c, float32(math.Inf(1)))
		}
		if i%4 == 2 {
			c = float32(r.Float64()*2 - 1)
		}
		if i%64 == 3 {
			a *= 1e-30 // subnormal products and sums
			c *= 1e-30
		}
		got, want := fmadd(a, b, c), fma.FMA32(a, b, c)
		if sep := float32(a*b) + c; math.Float32bits(sep) != math.Float32bits(want) {
			differ++
		}
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fmadd(%#08x, %#08x, %#08x) = %#08x, FMA32 gives %#08x (fused: %v)",
				math.Float32bits(a), math.Float32bits(b), math.Float32bits(c),
				math.Float32bits(got), math.Float32bits(want), fusedFmadd)
		}
	}
	// Midpoints: a·b is exactly halfway between two float32 values and c is
	// too small to move the float64 sum off it, so that sum rounds to the
	// even neighbour while the fused result must go to the side of c. A
	// software fast path that trusted the float64 sum here would be wrong.
	for i := 0; i < 20_000; i++ {
		u, v := 1+2*r.IntN(1<<11), 1+2*r.IntN(1<<11) // odd: u·v is odd
		a := float32(1 + float64(u)/(1<<12))
		b := float32(1 + float64(v)/(1<<12))
		if float64(a)*float64(b) >= 2 {
			continue
		}
		c := float32(math.Ldexp(1+r.Float64(), -60-r.IntN(40)))
		if i%2 == 1 {
			c = -c
		}
		if i%3 == 0 {
			a = -a
		}
		got, want := fmadd(a, b, c), fma.FMA32(a, b, c)
		if sep := float32(float64(a)*float64(b) + float64(c)); math.Float32bits(sep) != math.Float32bits(want) {
			differ++
		}
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("midpoint case: fmadd(%#08x, %#08x, %#08x) = %#08x, FMA32 gives %#08x (fused: %v)",
				math.Float32bits(a), math.Float32bits(b), math.Float32bits(c),
				math.Float32bits(got), math.Float32bits(want), fusedFmadd)
		}
	}
	if differ < 10_000 {
		t.Fatalf("only %d cases where separate rounding differs: the test cannot tell fused from unfused", differ)
	}
	// NaNs: fmadd may keep a payload, canon makes the result canonical.
	for _, x := range []float32{float32(math.NaN()), math.Float32frombits(0xffc00001), math.Float32frombits(0x7f800001)} {
		if got := canon(fmadd(x, 1, 2)); math.Float32bits(got) != fma.NaN32Bits {
			t.Errorf("canon(fmadd(%#08x, 1, 2)) = %#08x, want the canonical NaN", math.Float32bits(x), math.Float32bits(got))
		}
	}
	inf := float32(math.Inf(1))
	if got := canon(fmadd(inf, 1, -inf)); math.Float32bits(got) != fma.NaN32Bits {
		t.Errorf("canon(fmadd(Inf, 1, -Inf)) = %#08x, want the canonical NaN", math.Float32bits(got))
	}
}

// TestSgemmMidpoints runs every implementation on rank-one updates
// C += a·bᵀ whose products are float32 midpoints and whose C is too small
// to move a float64 sum off them (see TestFmadd): each element of C then
// needs the one rounding of a fused multiply-add, in every position of
// every kernel's tile. Columns of ordinary products are mixed in.
func TestSgemmMidpoints(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, size := range [][2]int{{3, 3}, {7, 19}, {13, 33}, {25, 40}} {
		m, n := size[0], size[1]
		a := make([]float32, m)
		b := make([]float32, n)
		c0 := make([]float32, m*n)
		for i := range a {
			a[i] = float32(1 + float64(1+2*r.IntN(1<<10))/(1<<12))
		}
		for j := range b {
			b[j] = float32(1 + float64(1+2*r.IntN(1<<10))/(1<<12))
			if r.IntN(2) == 1 {
				// An ordinary product in some columns, so that a
				// tile's row mixes both kinds.
				b[j] = float32(1 + r.Float64())
			}
		}
		for i := range c0 {
			c0[i] = float32(math.Ldexp(1+r.Float64(), -70))
			if r.IntN(2) == 1 {
				c0[i] = -c0[i]
			}
		}
		want := append([]float32(nil), c0...)
		Ref(false, false, m, n, 1, a, 1, b, n, want, n, true)
		for _, im := range allImpls() {
			got := append([]float32(nil), c0...)
			im.f(false, false, m, n, 1, a, 1, b, n, got, n, true)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s: %d×%d: C[%d, %d] = %#08x, want %#08x", im.name, m, n, i/n, i%n, math.Float32bits(got[i]), math.Float32bits(want[i]))
				}
			}
		}
	}
}
