package aggregate

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// testRules are the rules every generic test runs.
func testRules() []Rule {
	return []Rule{
		Mean{},
		Median{},
		TrimmedMean{Trim: 0.2},
		TrimmedMean{Trim: 0},
		NormClip{},
		NormClip{Max: 1.5},
		NormClip{Screen: true},
		NormClip{Max: 1.5, Screen: true},
		CenteredClip{},
		CenteredClip{Tau: 1, Iters: 2},
	}
}

// reference returns the float64 reference result of r on cs and the
// relative tolerance it is held to.
func reference(r Rule, cs []Contribution) ([]float64, float64) {
	switch r := r.(type) {
	case Mean:
		return refMean(cs), 2e-7
	case Median:
		return refMedian(cs), 0
	case TrimmedMean:
		return refTrimmed(cs, r.Trim), 2e-7
	case NormClip:
		return refNormClip(cs, r.Max, r.Screen), 2e-7
	case CenteredClip:
		// The rule rounds v to float32 after each iteration; the reference
		// keeps float64 throughout.
		return refCentered(cs, r.Tau, r.iters(), nil), 2e-6
	}
	panic("unknown rule")
}

// colScales returns, per coordinate j, max_i |x_ij| over the finite
// contributions.
func colScales(cs []Contribution, n int) []float64 {
	m := make([]float64, n)
	xs, _ := refValid(cs)
	for _, x := range xs {
		for j, v := range x {
			m[j] = max(m[j], math.Abs(float64(v)))
		}
	}
	return m
}

func aggregate(t *testing.T, r Rule, n int, cs []Contribution) ([]float32, Report) {
	t.Helper()
	dst := make([]float32, n)
	rep, err := r.Aggregate(dst, cs)
	if err != nil {
		t.Fatalf("%s: %v", r.Name(), err)
	}
	return dst, rep
}

func sameBits(a, b []float32) (int, bool) {
	if len(a) != len(b) {
		return -1, false
	}
	for j := range a {
		if math.Float32bits(a[j]) != math.Float32bits(b[j]) {
			return j, false
		}
	}
	return 0, true
}

func TestAgainstReference(t *testing.T) {
	sizes := []int{1, 7, 8, 9, 31, 100, 4097, 9000}
	counts := []int{1, 2, 3, 8, 17, 30}
	seed := uint64(1)
	for _, n := range sizes {
		for _, k := range counts {
			seed++
			r := newRand(seed)
			cs := randomContribs(r, k, n)
			scales := colScales(cs, n)
			for _, rule := range testRules() {
				got, _ := aggregate(t, rule, n, cs)
				want, rel := reference(rule, cs)
				for j := range got {
					scale := scales[j]
					tol := rel*math.Abs(want[j]) + 1e-12*scale + 1e-40
					if _, ok := rule.(CenteredClip); ok {
						tol = rel * scale
					}
					if _, ok := rule.(Median); ok && k%2 == 1 {
						tol = 0 // an input value, exactly
					}
					if _, ok := rule.(Median); ok && k%2 == 0 {
						// The float64 midpoint of two float32 values, rounded once.
						if got[j] != float32(want[j]) {
							t.Fatalf("seed %d n %d k %d %s: coordinate %d = %g, want %g", seed, n, k, rule.Name(), j, got[j], float32(want[j]))
						}
						continue
					}
					if d := math.Abs(float64(got[j]) - want[j]); !(d <= tol) {
						t.Fatalf("seed %d n %d k %d %s: coordinate %d = %g, want %g (|diff| %g > %g)", seed, n, k, rule.Name(), j, got[j], want[j], d, tol)
					}
				}
			}
		}
	}
}

func TestMedianPicksInput(t *testing.T) {
	r := newRand(7)
	for _, k := range []int{1, 3, 17, 31} {
		cs := randomContribs(r, k, 500)
		got, _ := aggregate(t, Median{}, 500, cs)
		for j, v := range got {
			found := false
			for _, c := range cs {
				if math.Float32bits(c.Dense[j]) == math.Float32bits(v) {
					found = true
				}
			}
			if !found {
				t.Fatalf("k %d: median coordinate %d = %g is no input value", k, j, v)
			}
		}
	}
}

func TestIdenticalContributions(t *testing.T) {
	// The aggregate of k copies of x is x, for every rule.
	r := newRand(11)
	x := denseValues(r, 1000, 3)
	for _, k := range []int{1, 2, 5, 8} {
		cs := make([]Contribution, k)
		for i := range cs {
			cs[i] = Contribution{Peer: peerName(i), Weight: float64(1 + r.IntN(5000)), Dense: x}
		}
		for _, rule := range testRules() {
			got, _ := aggregate(t, rule, len(x), cs)
			if _, clip := rule.(NormClip); clip && rule.(NormClip).Max != 0 {
				continue // scaled down to the bound
			}
			if j, ok := sameBits(got, x); !ok {
				t.Fatalf("k %d %s: coordinate %d = %g, want %g", k, rule.Name(), j, got[j], x[j])
			}
		}
	}
}

func TestNormClipUnclippedIsMean(t *testing.T) {
	r := newRand(12)
	cs := randomContribs(r, 9, 3000)
	mean, _ := aggregate(t, Mean{}, 3000, cs)
	clip, rep := aggregate(t, NormClip{Max: 1e30}, 3000, cs)
	if j, ok := sameBits(mean, clip); !ok {
		t.Fatalf("norm-clip with a huge bound differs from mean at %d: %g vs %g", j, clip[j], mean[j])
	}
	if len(rep.Clipped) != 0 {
		t.Fatalf("clipped %v", rep.Clipped)
	}
}

func shuffled(r *rand.Rand, cs []Contribution) []Contribution {
	out := slices.Clone(cs)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func TestPermutation(t *testing.T) {
	for seed := uint64(100); seed < 106; seed++ {
		r := newRand(seed)
		k := []int{2, 3, 8, 17, 9, 30}[seed%6]
		n := 2000 + r.IntN(3000)
		cs := randomContribs(r, k, n)
		// Two contributions from one peer, told apart by ID.
		cs[0].Peer = cs[1].Peer
		// Some sparse ones.
		for i := 0; i < k; i += 3 {
			cs[i].Sparse = toSparse(r, sparsify(r, cs[i].Dense, 0.3), 0.1)
			cs[i].Dense = nil
		}
		base := Canonical(cs)
		for _, rule := range testRules() {
			want, wantRep := aggregate(t, rule, n, base)
			for trial := range 3 {
				perm := Canonical(shuffled(r, cs))
				got, rep := aggregate(t, rule, n, perm)
				if j, ok := sameBits(got, want); !ok {
					t.Fatalf("seed %d trial %d %s: coordinate %d = %g, want %g", seed, trial, rule.Name(), j, got[j], want[j])
				}
				if fmt.Sprint(rep) != fmt.Sprint(wantRep) {
					t.Fatalf("seed %d trial %d %s: report %v, want %v", seed, trial, rule.Name(), rep, wantRep)
				}
			}
		}
		// Median and trimmed mean do not need the canonical order at all.
		for _, rule := range []Rule{Median{}, TrimmedMean{Trim: 0.2}} {
			want, _ := aggregate(t, rule, n, base)
			got, _ := aggregate(t, rule, n, shuffled(r, cs))
			if j, ok := sameBits(got, want); !ok {
				t.Fatalf("seed %d %s unsorted: coordinate %d = %g, want %g", seed, rule.Name(), j, got[j], want[j])
			}
		}
	}
}

func TestCanonical(t *testing.T) {
	cs := []Contribution{
		{Peer: "b", ID: "2"}, {Peer: "a", ID: "9"}, {Peer: "b", ID: "1"}, {Peer: "a", ID: "10"},
	}
	got := Canonical(cs)
	var keys []string
	for _, c := range got {
		keys = append(keys, c.Peer+"/"+c.ID)
	}
	if want := "a/10 a/9 b/1 b/2"; strings.Join(keys, " ") != want {
		t.Fatalf("Canonical order %v, want %s", keys, want)
	}
	if cs[0].Peer != "b" || cs[0].ID != "2" {
		t.Fatal("Canonical modified its input")
	}
}

func TestSparseMatchesDense(t *testing.T) {
	for seed := uint64(200); seed < 206; seed++ {
		r := newRand(seed)
		k := []int{1, 2, 3, 8, 17, 5}[seed%6]
		n := []int{1, 9, 4096, 5000, 12345, 100}[seed%6]
		dense := randomContribs(r, k, n)
		density := []float64{0.01, 0.2, 0.7}[seed%3]
		for i := range dense {
			dense[i].Dense = sparsify(r, dense[i].Dense, density)
		}
		if k > 1 {
			dense[k-1].Dense = make([]float32, n) // an all-zero update
		}
		sparse := slices.Clone(dense)
		mixed := slices.Clone(dense)
		for i := range sparse {
			sparse[i].Sparse = toSparse(r, dense[i].Dense, 0.05)
			sparse[i].Dense = nil
			if i%2 == 0 {
				mixed[i] = sparse[i]
			}
		}
		for _, rule := range testRules() {
			want, wantRep := aggregate(t, rule, n, dense)
			for name, cs := range map[string][]Contribution{"sparse": sparse, "mixed": mixed} {
				got, rep := aggregate(t, rule, n, cs)
				if j, ok := sameBits(got, want); !ok {
					t.Fatalf("seed %d %s %s: coordinate %d = %g (%#x), dense gives %g (%#x)", seed, name, rule.Name(), j, got[j], math.Float32bits(got[j]), want[j], math.Float32bits(want[j]))
				}
				if fmt.Sprint(rep) != fmt.Sprint(wantRep) {
					t.Fatalf("seed %d %s %s: report %v, dense gives %v", seed, name, rule.Name(), rep, wantRep)
				}
			}
		}
	}
}

func TestCenteredClipFrom(t *testing.T) {
	r := newRand(300)
	n := 3000
	cs := randomContribs(r, 8, n)
	start := denseValues(r, n, 0.5)
	for _, rule := range []CenteredClip{{Tau: 2, Iters: 1}, {Iters: 4}} {
		dst := make([]float32, n)
		if _, err := rule.AggregateFrom(dst, start, cs); err != nil {
			t.Fatal(err)
		}
		s64 := make([]float64, n)
		for j, v := range start {
			s64[j] = float64(v)
		}
		want := refCentered(cs, rule.Tau, rule.iters(), s64)
		scales := colScales(cs, n)
		for j := range dst {
			tol := 2e-6 * max(scales[j], math.Abs(s64[j]))
			if d := math.Abs(float64(dst[j]) - want[j]); !(d <= tol) {
				t.Fatalf("%s from start: coordinate %d = %g, want %g", rule.Name(), j, dst[j], want[j])
			}
		}
		// Starting from the median is Aggregate.
		med, _ := aggregate(t, Median{}, n, cs)
		a, _ := aggregate(t, rule, n, cs)
		if _, err := rule.AggregateFrom(dst, med, cs); err != nil {
			t.Fatal(err)
		}
		if j, ok := sameBits(a, dst); !ok {
			t.Fatalf("%s: AggregateFrom(median) differs from Aggregate at %d", rule.Name(), j)
		}
	}
}

func dist(a []float32, b []float64) float64 {
	var s float64
	for j := range a {
		d := float64(a[j]) - b[j]
		s += d * d
	}
	return math.Sqrt(s)
}

func TestRobustness(t *testing.T) {
	for seed := uint64(400); seed < 403; seed++ {
		r := newRand(seed)
		n := 2000
		truth := denseValues(r, n, 1)
		var cs []Contribution
		for i := range 8 {
			x := make([]float32, n)
			for j := range x {
				x[j] = truth[j] + float32(0.3*r.NormFloat64())
			}
			cs = append(cs, Contribution{Peer: peerName(i), Weight: 100, Dense: x})
		}
		honest := refMean(cs)
		var hnorm float64
		for _, v := range honest {
			hnorm += v * v
		}
		hnorm = math.Sqrt(hnorm)
		flipped := make([]float32, n)
		for j := range flipped {
			flipped[j] = -10 * cs[0].Dense[j]
		}
		cs = append(cs,
			Contribution{Peer: "byz-flip", Weight: 100, Dense: flipped},
			Contribution{Peer: "byz-noise", Weight: 100, Dense: denseValues(r, n, 1000)})
		cs = Canonical(cs)

		check := func(rule Rule, limit float64, far bool) {
			got, rep := aggregate(t, rule, n, cs)
			d := dist(got, honest) / hnorm
			if far && d < limit {
				t.Errorf("seed %d %s: relative distance to the honest mean %.3f, want > %g", seed, rule.Name(), d, limit)
			}
			if !far && d > limit {
				t.Errorf("seed %d %s: relative distance to the honest mean %.3f, want < %g (report %v)", seed, rule.Name(), d, limit, rep.Clipped)
			}
		}
		check(Mean{}, 10, true)
		check(Median{}, 0.15, false)
		check(TrimmedMean{Trim: 0.2}, 0.15, false)
		check(CenteredClip{}, 0.1, false)
		check(CenteredClip{Tau: 5, Iters: 3}, 0.15, false)
		check(NormClip{}, 0.5, false)

		_, rep := aggregate(t, NormClip{}, n, cs)
		if !slices.Contains(rep.Clipped, "byz-flip") || !slices.Contains(rep.Clipped, "byz-noise") {
			t.Errorf("seed %d: norm-clip clipped %v, want both Byzantine peers among them", seed, rep.Clipped)
		}
		_, rep = aggregate(t, CenteredClip{}, n, cs)
		for i, c := range cs {
			if strings.HasPrefix(c.Peer, "byz") && !(rep.Scales[i] < 0.1) {
				t.Errorf("seed %d: centered-clip scale of %s is %g, want < 0.1", seed, c.Peer, rep.Scales[i])
			}
		}
	}
}

func TestGOMAXPROCS(t *testing.T) {
	defer func(g int) { grain = g }(grain)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	r := newRand(500)
	n := 50000
	cs := randomContribs(r, 9, n)
	for i := 0; i < len(cs); i += 4 {
		cs[i].Sparse = toSparse(r, sparsify(r, cs[i].Dense, 0.05), 0)
		cs[i].Dense = nil
	}
	for _, rule := range testRules() {
		grain = 1 << 16
		runtime.GOMAXPROCS(1)
		want, wantRep := aggregate(t, rule, n, cs)
		for _, g := range []int{64, 1000, 1 << 16} {
			grain = g
			for _, procs := range []int{2, 3, 7} {
				runtime.GOMAXPROCS(procs)
				got, rep := aggregate(t, rule, n, cs)
				if j, ok := sameBits(got, want); !ok {
					t.Fatalf("%s GOMAXPROCS %d grain %d: coordinate %d = %g, want %g", rule.Name(), procs, g, j, got[j], want[j])
				}
				if fmt.Sprint(rep) != fmt.Sprint(wantRep) {
					t.Fatalf("%s GOMAXPROCS %d grain %d: report differs", rule.Name(), procs, g)
				}
			}
		}
	}
}

func TestExcludesNonFinite(t *testing.T) {
	r := newRand(600)
	n := 700
	good := randomContribs(r, 7, n)
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	bad := []Contribution{
		{Peer: "nan", Weight: 5, Dense: slices.Clone(good[0].Dense)},
		{Peer: "inf", Weight: 5, Sparse: &Sparse{Len: n, Index: []uint32{3, 600}, Value: []float32{1, -inf}}},
	}
	bad[0].Dense[n-1] = nan
	all := Canonical(append(slices.Clone(good), bad...))
	for _, rule := range testRules() {
		want, _ := aggregate(t, rule, n, good)
		got, rep := aggregate(t, rule, n, all)
		if j, ok := sameBits(got, want); !ok {
			t.Fatalf("%s: with non-finite contributions coordinate %d = %g, want %g", rule.Name(), j, got[j], want[j])
		}
		if fmt.Sprint(rep.Excluded) != "[inf nan]" {
			t.Fatalf("%s: excluded %v, want [inf nan]", rule.Name(), rep.Excluded)
		}
		for i, c := range all {
			finiteNorm := !math.IsNaN(rep.Norms[i]) && !math.IsInf(rep.Norms[i], 0)
			if finiteNorm != (c.Peer != "nan" && c.Peer != "inf") {
				t.Fatalf("%s: norm of %s is %g", rule.Name(), c.Peer, rep.Norms[i])
			}
		}
		dst := []float32{9, 9}
		_, err := rule.Aggregate(dst[:1], []Contribution{{Peer: "x", Weight: 1, Dense: []float32{nan}}})
		if !errors.Is(err, ErrAllExcluded) || dst[0] != 9 {
			t.Fatalf("%s: all excluded: err %v, dst %v", rule.Name(), err, dst)
		}
	}
}

func TestNoNegativeZero(t *testing.T) {
	tiny := math.Float32frombits(1) // the smallest subnormal
	negZero := float32(math.Copysign(0, -1))
	cs := []Contribution{
		{Peer: "a", Weight: 1, Dense: []float32{-tiny, negZero, -tiny, negZero}},
		{Peer: "b", Weight: 1.5, Dense: []float32{0, negZero, tiny / 2, -tiny}},
		{Peer: "c", Weight: 3, Dense: []float32{0, negZero, 0, negZero}},
		{Peer: "d", Weight: 1, Dense: []float32{0, negZero, 0, negZero}},
	}
	for _, rule := range append(testRules(), TrimmedMean{Trim: 0.3}) {
		got, _ := aggregate(t, rule, 4, cs)
		for j, v := range got {
			if v == 0 && math.Signbit(float64(v)) {
				t.Fatalf("%s: coordinate %d is -0", rule.Name(), j)
			}
		}
	}
}

func TestReports(t *testing.T) {
	cs := []Contribution{
		{Peer: "a", Weight: 1, Dense: []float32{3, 4}},    // norm 5
		{Peer: "b", Weight: 1, Dense: []float32{0, 1}},    // norm 1
		{Peer: "c", Weight: 2, Dense: []float32{0, -2}},   // norm 2
		{Peer: "d", Weight: 1, Dense: []float32{12, -16}}, // norm 20
	}
	dst := make([]float32, 2)
	rep, err := NormClip{}.Aggregate(dst, cs)
	if err != nil {
		t.Fatal(err)
	}
	// Median norm (2+5)/2 = 3.5.
	if rep.Bound != 3.5 || fmt.Sprint(rep.Clipped) != "[a d]" || fmt.Sprint(rep.Norms) != "[5 1 2 20]" {
		t.Fatalf("report %+v", rep)
	}
	if rep.Scales[0] != 0.7 || rep.Scales[1] != 1 || rep.Scales[3] != 3.5/20 {
		t.Fatalf("scales %v", rep.Scales)
	}
	// (1·(2.1, 2.8) + (0, 1) + 2·(0, −2) + (2.1, −2.8)) / 5
	if want := []float32{4.2 / 5, -3.0 / 5}; math.Abs(float64(dst[0]-want[0])) > 1e-6 || math.Abs(float64(dst[1]-want[1])) > 1e-6 {
		t.Fatalf("norm-clip = %v, want %v", dst, want)
	}
	rep, _ = Mean{}.Aggregate(dst, cs)
	if rep.Rule != "mean" || rep.Scales != nil || rep.Clipped != nil {
		t.Fatalf("mean report %+v", rep)
	}
	if want := []float32{15.0 / 5, -15.0 / 5}; dst[0] != want[0] || dst[1] != want[1] {
		t.Fatalf("mean = %v, want %v", dst, want)
	}
}

func TestTrimCount(t *testing.T) {
	for _, c := range []struct {
		trim float64
		n, k int
	}{{0.2, 10, 2}, {0.3, 10, 3}, {0.1, 30, 3}, {0.49, 3, 1}, {0.49, 2, 0}, {0.1, 9, 0}, {0, 5, 0}, {0.25, 4, 1}, {0.45, 100, 45}} {
		if got := trimCount(c.trim, c.n); got != c.k {
			t.Errorf("trimCount(%g, %d) = %d, want %d", c.trim, c.n, got, c.k)
		}
	}
}

func TestKeyOrder(t *testing.T) {
	r := newRand(700)
	negZero := float32(math.Copysign(0, -1))
	vals := []float32{0, negZero, 1, -1, math.Float32frombits(1), -math.Float32frombits(1),
		math.MaxFloat32, -math.MaxFloat32, float32(math.Inf(1)), float32(math.Inf(-1)), math.SmallestNonzeroFloat32 * 3}
	for range 200 {
		vals = append(vals, math.Float32frombits(r.Uint32()&^(0xff<<23)|uint32(r.IntN(255))<<23))
	}
	for _, a := range vals {
		if got := fromKey(key(a)); math.Float32bits(got) != math.Float32bits(a) {
			t.Fatalf("fromKey(key(%g)) = %g", a, got)
		}
		for _, b := range vals {
			less := a < b || (a == 0 && b == 0 && math.Signbit(float64(a)) && !math.Signbit(float64(b)))
			if (key(a) < key(b)) != less {
				t.Fatalf("key(%g) < key(%g) is %v", a, b, key(a) < key(b))
			}
		}
	}
}

func TestErrors(t *testing.T) {
	ok := func() Contribution { return Contribution{Peer: "p", Weight: 1, Dense: []float32{1, 2, 3}} }
	sp := func(l int, idx []uint32, val []float32) Contribution {
		return Contribution{Peer: "s", Weight: 1, Sparse: &Sparse{Len: l, Index: idx, Value: val}}
	}
	with := func(f func(*Contribution)) Contribution { c := ok(); f(&c); return c }
	cases := []struct {
		name string
		cs   []Contribution
	}{
		{"none", nil},
		{"empty", []Contribution{}},
		{"short", []Contribution{ok(), with(func(c *Contribution) { c.Dense = c.Dense[:2] })}},
		{"long", []Contribution{with(func(c *Contribution) { c.Dense = append(c.Dense, 4) })}},
		{"nil dense", []Contribution{with(func(c *Contribution) { c.Dense = nil })}},
		{"zero weight", []Contribution{ok(), with(func(c *Contribution) { c.Weight = 0 })}},
		{"negative weight", []Contribution{with(func(c *Contribution) { c.Weight = -1 })}},
		{"NaN weight", []Contribution{with(func(c *Contribution) { c.Weight = math.NaN() })}},
		{"Inf weight", []Contribution{with(func(c *Contribution) { c.Weight = math.Inf(1) })}},
		{"both", []Contribution{with(func(c *Contribution) { c.Sparse = &Sparse{Len: 3} })}},
		{"sparse length", []Contribution{ok(), sp(4, nil, nil)}},
		{"sparse out of range", []Contribution{sp(3, []uint32{0, 3}, []float32{1, 1})}},
		{"sparse huge index", []Contribution{sp(3, []uint32{math.MaxUint32}, []float32{1})}},
		{"sparse not increasing", []Contribution{sp(3, []uint32{1, 0}, []float32{1, 1})}},
		{"sparse repeated", []Contribution{sp(3, []uint32{1, 1}, []float32{1, 1})}},
		{"sparse counts", []Contribution{sp(3, []uint32{1, 2}, []float32{1})}},
	}
	rules := append(testRules(), CenteredClip{Iters: 100})
	for _, rule := range rules {
		for _, c := range cases {
			dst := []float32{7, 7, 7}
			_, err := rule.Aggregate(dst, c.cs)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s %s: err %v, want ErrInvalid", rule.Name(), c.name, err)
			}
			if dst[0] != 7 || dst[1] != 7 || dst[2] != 7 {
				t.Errorf("%s %s: dst modified on error", rule.Name(), c.name)
			}
		}
	}
	good := []Contribution{ok()}
	for _, rule := range []Rule{
		TrimmedMean{Trim: 0.5}, TrimmedMean{Trim: -0.1}, TrimmedMean{Trim: math.NaN()},
		NormClip{Max: -1}, NormClip{Max: math.Inf(1)}, NormClip{Max: math.NaN()},
		CenteredClip{Tau: -1}, CenteredClip{Tau: math.NaN()}, CenteredClip{Iters: -1}, CenteredClip{Iters: 101},
	} {
		if _, err := rule.Aggregate(make([]float32, 3), good); !errors.Is(err, ErrInvalid) {
			t.Errorf("%#v: err %v, want ErrInvalid", rule, err)
		}
	}
	cc := CenteredClip{}
	for _, start := range [][]float32{{1, 2}, {1, float32(math.NaN()), 3}, {float32(math.Inf(-1)), 0, 0}} {
		if _, err := cc.AggregateFrom(make([]float32, 3), start, good); !errors.Is(err, ErrInvalid) {
			t.Errorf("start %v: err %v, want ErrInvalid", start, err)
		}
	}
	// Zero-length updates are valid.
	for _, rule := range testRules() {
		if _, err := rule.Aggregate(nil, []Contribution{{Peer: "p", Weight: 1}}); err != nil {
			t.Errorf("%s: zero length: %v", rule.Name(), err)
		}
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		spec string
		want Rule
		name string
	}{
		{"mean", Mean{}, "mean"},
		{" median ", Median{}, "median"},
		{"trimmed-mean", TrimmedMean{Trim: 0.1}, "trimmed-mean:trim=0.1"},
		{"trimmed-mean:trim=0.2", TrimmedMean{Trim: 0.2}, "trimmed-mean:trim=0.2"},
		{"trimmed-mean: trim = 0 ", TrimmedMean{}, "trimmed-mean:trim=0"},
		{"norm-clip", NormClip{}, "norm-clip:max=median"},
		{"norm-clip:max=median", NormClip{}, "norm-clip:max=median"},
		{"norm-clip:max=1.0", NormClip{Max: 1}, "norm-clip:max=1"},
		{"norm-clip:max=2.5e-3", NormClip{Max: 0.0025}, "norm-clip:max=0.0025"},
		{"centered-clip", CenteredClip{Iters: 3}, "centered-clip:tau=median,iters=3"},
		{"centered-clip:tau=1.0,iters=3", CenteredClip{Tau: 1, Iters: 3}, "centered-clip:tau=1,iters=3"},
		{"centered-clip:iters=1,tau=0.5", CenteredClip{Tau: 0.5, Iters: 1}, "centered-clip:tau=0.5,iters=1"},
		{"centered-clip:tau=median,iters=5", CenteredClip{Iters: 5}, "centered-clip:tau=median,iters=5"},
	} {
		r, err := Parse(c.spec)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.spec, err)
			continue
		}
		if r != c.want || r.Name() != c.name {
			t.Errorf("Parse(%q) = %#v named %q, want %#v named %q", c.spec, r, r.Name(), c.want, c.name)
		}
		again, err := Parse(r.Name())
		if err != nil || again != r {
			t.Errorf("Parse(%q) = %#v, %v; want %#v", r.Name(), again, err, r)
		}
	}
	for _, spec := range []string{
		"", "mode", "Mean", "mean:x=1", "median:", "trimmed-mean:trim=0.5", "trimmed-mean:trim=-0.1",
		"trimmed-mean:trim=abc", "trimmed-mean:trim=NaN", "trimmed-mean:trim=0.1,trim=0.2", "trimmed-mean:trim",
		"norm-clip:max=0", "norm-clip:max=-1", "norm-clip:max=Inf", "norm-clip:bound=1", "norm-clip:max=",
		"centered-clip:tau=0", "centered-clip:iters=0", "centered-clip:iters=101", "centered-clip:iters=1.5",
		"centered-clip:tau=1,,iters=2", "centered-clip:tau=1,iters=2,extra=3",
	} {
		if r, err := Parse(spec); err == nil {
			t.Errorf("Parse(%q) = %#v, want an error", spec, r)
		}
	}
}

func TestInputsUnchanged(t *testing.T) {
	r := newRand(900)
	n := 3000
	cs := randomContribs(r, 9, n)
	for i := 0; i < len(cs); i += 2 {
		cs[i].Sparse = toSparse(r, sparsify(r, cs[i].Dense, 0.1), 0.01)
		cs[i].Dense = nil
	}
	snapshot := func() []uint32 {
		var bits []uint32
		for _, c := range cs {
			for _, v := range toDense(c) {
				bits = append(bits, math.Float32bits(v))
			}
		}
		return bits
	}
	before := snapshot()
	start := denseValues(r, n, 1)
	startCopy := slices.Clone(start)
	for _, rule := range testRules() {
		aggregate(t, rule, n, cs)
	}
	if _, err := (CenteredClip{}).AggregateFrom(make([]float32, n), start, cs); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, snapshot()) || !slices.Equal(start, startCopy) {
		t.Fatal("a rule modified its input")
	}
}
