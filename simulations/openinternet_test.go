package simulations

import (
	"os"
	"testing"
	"time"
)

// TestOpenInternetSmall runs the open-internet scenario at a reduced
// size (40 peers, 200 Sybils, 12 steps) and requires every expectation
// to hold: the round finalises every step, no honest peer is excluded,
// both adaptive liars are, and the loss stays within 5% of the honest
// twin's. SHOAL_LONG=1 runs the full scenario.
func TestOpenInternetSmall(t *testing.T) {
	s, err := LoadScenario("open-internet")
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("SHOAL_LONG") == "" {
		if err := (Overrides{Peers: 40, Steps: 12}).Apply(s); err != nil {
			t.Fatal(err)
		}
		s.Sybils.Count = 200
		s.Limit = Duration(3 * time.Hour)
		s.Expect.CheatersExcluded.ByStep = 12
	}
	r, err := Run(s, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d:\n%s", s.Seed, r.Text())
	names := map[string]bool{}
	for _, e := range r.Expectations {
		names[e.Name] = true
		if e.Got == "" {
			t.Errorf("%s: no measured value", e.Name)
		}
	}
	for _, want := range []string{"invariants", "loss_vs_twin", "no_honest_excluded", "cheaters_excluded", "no_stuck_steps", "steps_finalised", "honest_hold_head"} {
		if !names[want] {
			t.Errorf("expectation %s not evaluated (have %v)", want, names)
		}
	}
	if y := r.Sybils; y == nil || y.Count != s.Sybils.Count || y.Messages == 0 {
		t.Errorf("sybils %+v", y)
	}
	if err := r.Check(); err != nil {
		t.Errorf("seed %d: %v", s.Seed, err)
	}
}
