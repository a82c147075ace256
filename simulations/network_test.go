package simulations

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

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
