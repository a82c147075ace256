package exchange

import (
	"math"

	"github.com/shoal-network/shoal/tensor"
)

// noise is a deterministic Gaussian source for Byzantine updates
// (SplitMix64 and the polar method on the deterministic float32 log).
type noise struct{ s uint64 }

func newNoise(seed uint64) *noise { return &noise{s: seed ^ 0x6e6f697365} }

func (n *noise) uniform() float32 {
	n.s += 0x9e3779b97f4a7c15
	z := n.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float32(z>>40) / (1 << 24)
}

func (n *noise) normal() float32 {
	for {
		u, v := 2*n.uniform()-1, 2*n.uniform()-1
		s := float32(u*u) + float32(v*v)
		if s > 0 && s < 1 {
			return float32(u * tensor.Sqrt32(-2*tensor.Log32(s)/s))
		}
	}
}

// attack returns a Byzantine worker's update given its honest one:
// "sign-flip" sends −10× the honest update, "noise" a random vector with
// ten times the honest update's norm.
func attack(kind string, honest []float32, n *noise) []float32 {
	out := make([]float32, len(honest))
	switch kind {
	case "noise":
		norm := float64(tensor.Sqrt32(tensor.Dot(honest, honest)))
		if norm == 0 {
			norm = 1
		}
		var s float64
		for i := range out {
			out[i] = n.normal()
			s += float64(out[i]) * float64(out[i])
		}
		scale := float32(10 * norm / math.Sqrt(s))
		for i := range out {
			out[i] = float32(out[i] * scale)
		}
	default: // sign-flip
		for i, v := range honest {
			out[i] = float32(-10 * v)
		}
	}
	return out
}
