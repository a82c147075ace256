package gradient

import "github.com/shoal-network/shoal/tensor"

// rng is a small deterministic generator (SplitMix64) used to initialise
// parameters. Its output depends only on its seed.
type rng struct{ s uint64 }

func newRNG(seed uint64) *rng { return &rng{s: seed} }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix64(r.s)
}

// mix64 is SplitMix64's finaliser.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// float32 returns a uniform value in [0, 1) with 24 random bits.
func (r *rng) float32() float32 { return float32(r.next()>>40) / (1 << 24) }

// normal returns a standard normal deviate by Marsaglia's polar method,
// computed in float32 with the deterministic tensor.Log32.
func (r *rng) normal() float32 {
	for {
		u := 2*r.float32() - 1
		v := 2*r.float32() - 1
		s := float32(u*u) + float32(v*v)
		if s >= 1 || s == 0 {
			continue
		}
		return float32(u * tensor.Sqrt32(-2*tensor.Log32(s)/s))
	}
}

// streamSeed derives the seed of a named stream (FNV-1a of the name mixed
// with the seed).
func streamSeed(seed uint64, name string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 0x100000001b3
	}
	return mix64(seed ^ mix64(h))
}
