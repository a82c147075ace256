package simulations

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/simulations/engine"
	"github.com/shoal-network/shoal/tracker/wire"
)

const expectBlock = `
twin: true
expect:
  loss_vs_twin: 5%
  no_honest_excluded: true
  cheaters_excluded: {behaviours: [adaptive-liar, sybil-voter], by_step: 20}
  no_stuck_steps: {margin: 10m}
  steps_finalised: 80%
  honest_hold_head: true
sybils: {count: 100, silent: 0.5, voter: 0.3, junk: 0.2, workers: 0.4}
`

// traceWith returns the trace scenario, trained for real, with more
// lines after it.
func traceWith(t *testing.T, more string) string {
	t.Helper()
	base, err := os.ReadFile("testdata/scenarios/trace.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Replace(string(base), "training: cost", "training: real", 1) + more
}

func TestExpectParse(t *testing.T) {
	s, err := ParseScenario([]byte(traceWith(t, expectBlock)), "x.yaml", os.DirFS("testdata/scenarios"))
	if err != nil {
		t.Fatal(err)
	}
	e := s.Expect
	if e == nil || e.LossVsTwin == nil || *e.LossVsTwin != 0.05 || !e.NoHonestExcluded || !e.HonestHoldHead {
		t.Fatalf("expect %+v", e)
	}
	if c := e.CheatersExcluded; c == nil || c.ByStep != 20 || len(c.Behaviours) != 2 {
		t.Errorf("cheaters_excluded %+v", c)
	}
	if e.NoStuckSteps == nil || time.Duration(e.NoStuckSteps.Margin) != 10*time.Minute {
		t.Errorf("no_stuck_steps %+v", e.NoStuckSteps)
	}
	if e.StepsFinalised == nil || e.StepsFinalised.of(30) != 24 || (CountOrShare{Count: 7}).of(30) != 7 {
		t.Errorf("steps_finalised %+v", e.StepsFinalised)
	}
	if y := s.Sybils; y.Count != 100 || y.Voter != 0.3 {
		t.Errorf("sybils %+v", y)
	}
	kinds := map[engine.SybilKind]int{}
	workers := 0
	for _, y := range s.Sybils.deal() {
		kinds[y.Kind]++
		if y.Role == wire.RoleWorker {
			workers++
		}
	}
	if kinds[engine.SybilSilent] != 50 || kinds[engine.SybilVoter] != 30 || kinds[engine.SybilJunk] != 20 || workers != 20+20 {
		t.Errorf("dealt %v, %d workers", kinds, workers)
	}
	// The twin has neither Sybils nor expectations.
	if tw := s.TwinOf(); tw.Sybils.Count != 0 || tw.Expect != nil {
		t.Errorf("twin: %+v, %+v", tw.Sybils, tw.Expect)
	}
}

func TestExpectErrors(t *testing.T) {
	for _, c := range []struct {
		edit func(string) string
		want []string
	}{
		{func(s string) string {
			return strings.Replace(s, "  honest_hold_head: true", "  honest_hold_head: true\n  loss_vs_moon: 3%", 1)
		},
			[]string{"x.yaml", "line 30", "loss_vs_moon", "not found"}},
		{func(s string) string { return strings.Replace(s, "loss_vs_twin: 5%", "loss_vs_twin: five", 1) },
			[]string{"x.yaml", "line 24", `"five" is not a share`}},
		{func(s string) string { return strings.Replace(s, "twin: true", "twin: false", 1) },
			[]string{"x.yaml", "line 24", "loss_vs_twin: needs twin"}},
		{func(s string) string { return strings.Replace(s, "sybil-voter", "sybil-poet", 1) },
			[]string{"line 26", `unknown behaviour "sybil-poet"`}},
		{func(s string) string { return strings.Replace(s, "by_step: 20", "by_step: 0", 1) }, []string{"by_step must be at least 1"}},
		{func(s string) string { return strings.Replace(s, "steps_finalised: 80%", "steps_finalised: 80", 1) },
			[]string{"line 28", "80 is more than the scenario's 6 steps"}},
		{func(s string) string { return strings.Replace(s, "steps_finalised: 80%", "steps_finalised: 180%", 1) }, []string{"line 28", "not a share from 0% to 100%"}},
		{func(s string) string { return strings.Replace(s, "margin: 10m", "margin: soon", 1) }, []string{"duration"}},
		{func(s string) string { return s[:strings.Index(s, "expect:")] + "expect: 3\n" }, []string{"line 23", "expect: want a mapping"}},
		{func(s string) string { return strings.Replace(s, "margin: 10m", "margin: 10m, slack: 1m", 1) }, []string{"line 27", "field slack not found"}},
		{func(s string) string { return strings.Replace(s, "junk: 0.2", "junk: 0.3", 1) }, []string{"sum to 1.1"}},
		{func(s string) string { return strings.Replace(s, "count: 100", "count: -1", 1) }, []string{"sybils.count"}},
		{func(s string) string { return strings.Replace(s, "workers: 0.4", "workers: 0.4, kind: 1", 1) }, []string{"field kind not found"}},
	} {
		_, err := ParseScenario([]byte(c.edit(traceWith(t, expectBlock))), "x.yaml", os.DirFS("testdata/scenarios"))
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("error %v, want it to mention %q", err, w)
			}
		}
	}
}

// TestExpectEvaluated: a run's report lists each expectation with its
// measured value, and Check fails when one is not met.
func TestExpectEvaluated(t *testing.T) {
	s, err := ParseScenario([]byte(strings.Replace(traceWith(t, `
expect:
  no_honest_excluded: true
  steps_finalised: 6
  no_stuck_steps: {margin: 5m}
  honest_hold_head: true
`), "training: real", "training: cost", 1)), "x.yaml", os.DirFS("testdata/scenarios"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(s, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Expectations) != 5 || len(r.Failed()) != 0 || r.Check() != nil {
		t.Fatalf("seed %d: expectations %+v\n%s", s.Seed, r.Expectations, r.Text())
	}
	if !strings.Contains(r.Text(), "PASS  steps_finalised") || !strings.Contains(string(r.JSON()), `"expectations"`) {
		t.Errorf("the report does not list the expectations:\n%s", r.Text())
	}
	// The same run, asked for more than it can give.
	s.Expect.StepsFinalised.Count = 7
	s.Steps = 6
	r, err = Run(s, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Check()
	if err == nil || !strings.Contains(err.Error(), "steps_finalised (want at least 7 of 6, got 6)") || !strings.Contains(r.Text(), "FAIL  steps_finalised") {
		t.Errorf("error %v\n%s", err, r.Text())
	}
}

// TestAdaptiveLiarLiesUnchecked: an adaptive liar lies on the units it
// believes no one recomputes, and only there.
func TestAdaptiveLiarLiesUnchecked(t *testing.T) {
	replicated := func(step uint64, attempt, unit uint32) bool { return unit%2 == 0 }
	e := &CostEngine{Spec: testSpec(4), Behaviour: AdaptiveLiar, Replicated: replicated}
	base := cid.Cid{}
	for _, c := range []struct {
		unit    uint32
		replica uint8
		lie     bool
	}{{1, 0, true}, {2, 0, false}, {2, 1, false}, {3, 0, true}} {
		j := node.TrainJob{Step: 3, Base: base, Unit: c.unit, Replica: c.replica}
		honest := rawOf(base, 3, c.unit)
		if lied := !e.rawFor(j).Equals(honest); lied != c.lie {
			t.Errorf("unit %d replica %d: lied %v, want %v", c.unit, c.replica, lied, c.lie)
		}
	}
	w := &CostEngine{Spec: e.Spec, Behaviour: Withholder}
	if j := (node.TrainJob{Step: 1, Unit: 1}); !w.rawFor(j).Equals(rawOf(j.Base, 1, 1)) {
		t.Error("a withholder lies about its result")
	}
}
