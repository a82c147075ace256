package aggregate

import (
	"math"
	"slices"
	"testing"
)

// honestAndFlipped returns k+flipped sparse contributions that share a
// direction (a common vector plus each one's own noise, each keeping a
// random 30% of the coordinates), the last `flipped` of them multiplied
// by -10, the bench's sign-flip attack: an attacker that computed an
// honest update and sends it reversed.
func honestAndFlipped(seed uint64, k, flipped, n int) []Contribution {
	r := newRand(seed)
	common := denseValues(r, n, 1)
	cs := make([]Contribution, 0, k+flipped)
	for i := range k + flipped {
		x := denseValues(r, n, 1.5)
		for j := range x {
			x[j] += common[j]
			if i >= k {
				x[j] *= -10
			}
		}
		c := Contribution{Peer: peerName(i), ID: "u" + peerName(i), Weight: float64(100 + r.IntN(100)), Dense: x}
		cs = append(cs, keepSome(r, c, 0.3))
	}
	return cs
}

// TestScreenLeavesOutSignFlips checks that the screen leaves out exactly
// the sign-flipped copies among sparse updates that share a direction,
// and that what remains is the clipped partial mean of the honest ones
// under the bound taken over all of them.
func TestScreenLeavesOutSignFlips(t *testing.T) {
	const n = 20000
	for seed := uint64(1); seed <= 4; seed++ {
		cs := honestAndFlipped(seed, 6, 2, n)
		rule := NormClip{Partial: true, Screen: true}
		dst := make([]float32, n)
		rep, err := rule.Aggregate(dst, cs)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{cs[6].Peer, cs[7].Peer}; !slices.Equal(rep.Screened, want) {
			t.Fatalf("seed %d: screened %v, want the flipped %v", seed, rep.Screened, want)
		}
		for _, at := range []int{6, 7} {
			if rep.Scales[at] != 0 {
				t.Fatalf("seed %d: screened contribution %d has scale %g, want 0", seed, at, rep.Scales[at])
			}
		}
		want := refPartial(cs[:6], rep.Bound)
		for j, y := range dst {
			if math.Abs(float64(y)-want[j]) > 2e-7*math.Abs(want[j])+1e-30 {
				t.Fatalf("seed %d coordinate %d: %g, want %g", seed, j, y, want[j])
			}
		}
		// Without the screen the flipped copies pull the other way.
		plain := make([]float32, n)
		if _, err := (NormClip{Partial: true}).Aggregate(plain, cs); err != nil {
			t.Fatal(err)
		}
		if _, same := sameBits(plain, dst); same {
			t.Fatalf("seed %d: the screen changed nothing", seed)
		}
	}
}

// TestScreenFewContributions checks that with fewer than MinScreen
// contributions nothing is screened, even two that point opposite ways.
func TestScreenFewContributions(t *testing.T) {
	cs := honestAndFlipped(9, 1, 1, 5000)
	for _, rule := range []Rule{NormClip{Screen: true}, NormClip{Partial: true, Screen: true}} {
		_, rep := aggregate(t, rule, 5000, cs)
		if len(rep.Screened) != 0 {
			t.Fatalf("%s: screened %v of two contributions", rule.Name(), rep.Screened)
		}
	}
}

// TestScreenNoneAgree checks that contributions with nothing in common
// (disjoint coordinates: every inner product is 0) are all left out and
// the aggregate is +0 everywhere, a step that does not move.
func TestScreenNoneAgree(t *testing.T) {
	const n = 30
	var cs []Contribution
	for i := range 3 {
		s := &Sparse{Len: n}
		for j := i * 10; j < i*10+10; j++ {
			s.Index = append(s.Index, uint32(j))
			s.Value = append(s.Value, float32(j+1))
		}
		cs = append(cs, Contribution{Peer: peerName(i), ID: "u", Weight: 1, Sparse: s})
	}
	dst := make([]float32, n)
	for j := range dst {
		dst[j] = 7
	}
	rep, err := NormClip{Partial: true, Screen: true}.Aggregate(dst, cs)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Screened) != 3 {
		t.Fatalf("screened %v, want all three", rep.Screened)
	}
	for j, y := range dst {
		if math.Float32bits(y) != 0 {
			t.Fatalf("coordinate %d = %g, want +0", j, y)
		}
	}
}

// TestScreenReference checks the screen's choice against the float64
// reference on contributions that share a direction to a varying degree,
// dense and sparse, so that some are kept and some are not.
func TestScreenReference(t *testing.T) {
	const n = 3000
	for seed := uint64(20); seed < 40; seed++ {
		r := newRand(seed)
		common := denseValues(r, n, 1)
		cs := randomContribs(r, 3+int(seed%6), n)
		for i := range cs {
			a := float32(r.NormFloat64())
			for j := range cs[i].Dense {
				cs[i].Dense[j] += a * common[j]
			}
			if i%2 == 1 {
				cs[i] = keepSome(r, cs[i], 0.3)
			}
		}
		xs := make([][]float32, len(cs))
		for i := range cs {
			xs[i] = toDense(cs[i])
		}
		_, rep := aggregate(t, NormClip{Partial: true, Screen: true}, n, cs)
		coef := make([]float64, len(cs))
		for i := range cs {
			coef[i] = cs[i].Weight * min(1, rep.Bound/rep.Norms[i])
		}
		var want []string
		for i, ok := range refScreen(xs, coef) {
			if !ok {
				want = append(want, cs[i].Peer)
			}
		}
		if !slices.Equal(rep.Screened, want) {
			t.Fatalf("seed %d: screened %v, want %v", seed, rep.Screened, want)
		}
	}
}
