package simulations

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
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

func TestSessionLengths(t *testing.T) {
	const mean = time.Hour
	for _, dist := range []string{"exponential", "lognormal", "weibull"} {
		r := rand.New(rand.NewPCG(5, 6))
		var sum float64
		const n = 200_000
		for range n {
			sum += float64(sessionLength(r, dist, mean))
		}
		if got := time.Duration(sum / n); got < 55*time.Minute || got > 65*time.Minute {
			t.Errorf("%s: mean session %v, want about %v", dist, got, mean)
		}
	}
}

func TestParseTrace(t *testing.T) {
	ev, err := ParseTrace([]byte("# time,peer,event\n90s,alice,join\n30,bob,join\n\n2h,alice,leave\n"), "t.csv")
	if err != nil {
		t.Fatal(err)
	}
	want := []TraceEvent{{30 * time.Second, "bob", true}, {90 * time.Second, "alice", true}, {2 * time.Hour, "alice", false}}
	if !slices.Equal(ev, want) {
		t.Errorf("got %v, want %v", ev, want)
	}
	for _, bad := range []string{"1s,a", "x,a,join", "1s,a,stay", "1s,,join"} {
		if _, err := ParseTrace([]byte(bad), "bad.csv"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseUnits(t *testing.T) {
	for in, want := range map[string]float64{"0.2/h": 0.2, "5/min": 300, "1/s": 3600, "24/d": 1, "3": 3} {
		if got, err := ParseRate(in); err != nil || math.Abs(got-want) > 1e-12 {
			t.Errorf("ParseRate(%q) = %g, %v; want %g", in, got, err, want)
		}
	}
	for _, bad := range []string{"-1/h", "1/week", "fast"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q): no error", bad)
		}
	}
}
