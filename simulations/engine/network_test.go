package engine

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// fifoFinish is the slow reference of envelope: a FIFO queue of rate
// 1/x serving jobs in order of arrival.
func fifoFinish(arrive, size []float64, x float64) float64 {
	idx := make([]int, len(arrive))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case arrive[a] < arrive[b]:
			return -1
		case arrive[a] > arrive[b]:
			return 1
		}
		return 0
	})
	t := math.Inf(-1)
	for _, i := range idx {
		t = max(t, arrive[i]) + size[i]*x
	}
	return t
}

func TestEnvelopeIsFIFO(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 1))
		n := 1 + r.IntN(60)
		arrive, size := make([]float64, n), make([]float64, n)
		for i := range n {
			arrive[i] = float64(r.IntN(1000)) // ties happen
			size[i] = float64(1 + r.IntN(50))
			if r.IntN(5) == 0 {
				size[i] = 0
			}
		}
		e := newEnvelope(arrive, size)
		for _, x := range []float64{0, 0.01, 0.5, 1, 3, 17, 1e3} {
			want, got := fifoFinish(arrive, size, x), e.max(x)
			if math.Abs(want-got) > 1e-6*max(1, math.Abs(want)) {
				t.Fatalf("seed %d, n %d, x %g: envelope %g, FIFO %g", seed, n, x, got, want)
			}
		}
	}
}

func TestLinkMix(t *testing.T) {
	for _, name := range []string{"home", "mobile", "datacenter", "planet", "home:0.7,mobile:0.3"} {
		m, err := ParseLinkMix(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		var downs []float64
		for range 2000 {
			l, class := m.Draw(r)
			if l.Down <= 0 || l.Up <= 0 || l.Latency <= 0 || class == "" {
				t.Fatalf("%s: drew %v (%s)", name, l, class)
			}
			downs = append(downs, l.Down)
		}
		if name == "home" {
			if med := Summarise(downs).P50 / Mbit; med < 80 || med > 125 {
				t.Errorf("home: median downlink %.0f Mbit/s, want about 100", med)
			}
		}
	}
	for _, bad := range []string{"fibre", "home:x", "home:-1", ""} {
		if _, err := ParseLinkMix(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
