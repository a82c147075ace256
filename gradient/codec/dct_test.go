package codec

import (
	"math"
	"strconv"
	"testing"
)

func TestCosQuarter(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 5, 7, 8, 16, 63, 64, 100, 255, 256, 1000, 1023, 1024} {
		for j := 0; j <= n; j++ {
			got := cosQuarter(j, n)
			want := math.Cos(math.Pi * float64(j) / float64(2*n))
			if math.Abs(got-want) > 1e-15 {
				t.Fatalf("cos(π·%d/%d) = %.17g, want %.17g", j, 2*n, got, want)
			}
		}
		if cosQuarter(0, n) != 1 || cosQuarter(n, n) != 0 || math.Signbit(cosQuarter(n, n)) {
			t.Fatalf("n = %d: cos(0) or cos(π/2) is not exact", n)
		}
	}
}

func TestBasisOrthonormal(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 16, 64, 255} {
		b := make([]float32, n*n)
		basisMatrix(b, n)
		for k := range n {
			for l := range n {
				var dot float64
				for i := range n {
					dot += float64(b[k*n+i]) * float64(b[l*n+i])
				}
				want := 0.0
				if k == l {
					want = 1
				}
				if math.Abs(dot-want) > 1e-6 {
					t.Fatalf("n = %d: <B[%d], B[%d]> = %g", n, k, l, dot)
				}
			}
			// Against the definition.
			s := math.Sqrt(2 / float64(n))
			if k == 0 {
				s = math.Sqrt(1 / float64(n))
			}
			for i := range n {
				want := s * math.Cos(math.Pi*float64((2*i+1)*k)/float64(2*n))
				if math.Abs(float64(b[k*n+i])-want) > 0x1p-24*s+1e-15 {
					t.Fatalf("n = %d: B[%d][%d] = %g, want %g", n, k, i, b[k*n+i], want)
				}
			}
		}
	}
}

// TestDCTAllCoefficients sends every coefficient: the inverse transform
// must give back x up to fp16 quantisation and float32 rounding.
func TestDCTAllCoefficients(t *testing.T) {
	for _, chunk := range []int{2, 7, 64, 256} {
		c := mustParse(t, "dct-topk:chunk="+strconv.Itoa(chunk)+",k="+strconv.Itoa(chunk)+",values=fp16")
		x := make([]float32, 3*chunk+chunk/2+1)
		for i := range x {
			x[i] = float32(math.Sin(float64(i)*0.37) + 0.1*float64(i%5))
		}
		b, err := c.Encode([]Tensor{{Name: "x", Shape: []int{len(x)}, Data: x}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Decode(b, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		var e2, n2 float64
		for i, y := range out[0].Data {
			d := float64(y) - float64(x[i])
			e2 += d * d
			n2 += float64(x[i]) * float64(x[i])
		}
		if math.Sqrt(e2) > 0x1p-11*math.Sqrt(n2) {
			t.Errorf("chunk %d: ||y - x|| = %g, ||x|| = %g", chunk, math.Sqrt(e2), math.Sqrt(n2))
		}
	}
}
