package simulations

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuiltinScenarios(t *testing.T) {
	names := Builtin()
	for _, want := range []string{"demo", "home-volunteers-1k", "churn-heavy", "byzantine-10pct", "planet-10k", "open-internet", "tracker-group"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("no built-in scenario %s (have %v)", want, names)
		}
	}
	for _, n := range names {
		s, err := LoadScenario(n)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if s.Name != n || s.Spec == nil || s.Description == "" {
			t.Errorf("%s: name %q, spec %v, description %q", n, s.Name, s.Spec != nil, s.Description)
		}
	}
	// A path works too, and so does a scenario whose round names no
	// tracker.
	if _, err := LoadScenario(filepath.Join("scenarios", "demo.yaml")); err != nil {
		t.Errorf("by path: %v", err)
	}
}

// groupIDs are three trackers' peer IDs, for a round with a group.
const groupIDs = "12D3KooWDftdMc6DLtazPGWtGyMnmTwsYZ9neyMbmv2BMYCQZ865, 12D3KooWNFunpwpbM69DzhxdRFp396UQScRh1nA2u7WjY2fkkhhM, 12D3KooWT2vwTot4wHouuAgtcZpzHxgEuae7iunfk4ckaJZgj4EW"

func TestScenarioErrors(t *testing.T) {
	base, err := os.ReadFile("testdata/scenarios/trace.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		edit func(string) string
		want string
	}{
		{func(s string) string { return strings.Replace(s, "peers: 8", "peers: 0", 1) }, "peers"},
		{func(s string) string { return strings.Replace(s, "peers: 8", "peers: 8\nlinks: home", 1) }, "field links not found"},
		{func(s string) string { return strings.Replace(s, "training: cost", "training: magic", 1) }, "training"},
		{func(s string) string { return strings.Replace(s, "train: 30s", "train: soon", 1) }, "duration"},
		{func(s string) string { return strings.Replace(s, "trace: trace.csv", "rate: 1/week", 1) }, "unknown time unit"},
		{func(s string) string { return strings.Replace(s, "inner_steps: 5", "inner_steps: -5", 1) }, "inner_steps"},
		{func(s string) string { return s + "adversaries:\n  - {fraction: 0.6, behaviour: sign-flip}\n" }, "not a minority"},
		{func(s string) string { return s + "adversaries:\n  - {fraction: 0.1, behaviour: polite}\n" }, "unknown adversary behaviour"},
		{func(s string) string { return s + "network:\n  leader_kills: [10m]\n" }, "leader_kills: needs a tracker group"},
		{func(s string) string {
			return strings.Replace(s, "  seed: 2\n", "  seed: 2\n  trackers: ["+groupIDs+"]\n", 1) + "network:\n  delivery: batched\n"
		}, "tracker group is simulated with delivery: every"},
		{func(s string) string {
			return strings.Replace(s, "training: cost", "training: cost\nexpect:\n  new_leader_within: 10s", 1)
		}, "new_leader_within: needs network.leader_kills"},
	} {
		_, err := ParseScenario([]byte(c.edit(string(base))), "x.yaml", os.DirFS("testdata/scenarios"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want it to mention %q", err, c.want)
		}
	}
}

// runReport runs a scenario and returns its report files.
func runReport(t *testing.T, s *Scenario) map[string][]byte {
	t.Helper()
	r, err := Run(s, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	files := r.Plots()
	files["report.json"] = r.JSON()
	files["summary.txt"] = []byte(r.Text())
	return files
}

// TestReportDeterministic: the same scenario and seed give the same
// report, byte for byte, for real training and for a batched cost run with
// churn, adversaries and a partition.
func TestReportDeterministic(t *testing.T) {
	load := func(name string, o Overrides) func() *Scenario {
		return func() *Scenario {
			s, err := LoadScenario(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := o.Apply(s); err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	byz := 0.1
	for name, mk := range map[string]func() *Scenario{
		"demo": load("demo", Overrides{Steps: 4}),
		"churn-heavy batched": func() *Scenario {
			s := load("churn-heavy", Overrides{Peers: 60, Steps: 4, Delivery: "batched", Byzantine: &byz, Behaviour: "free-rider"})()
			s.Network.Partitions = []PartitionSpec{{At: Duration(3 * time.Minute), For: Duration(2 * time.Minute), Fraction: 0.2}}
			return s
		},
	} {
		t.Run(name, func(t *testing.T) {
			a, b := runReport(t, mk()), runReport(t, mk())
			if len(a) != len(b) {
				t.Fatalf("%d files, then %d", len(a), len(b))
			}
			for f := range a {
				if !bytes.Equal(a[f], b[f]) {
					t.Errorf("seed %d: %s differs between two runs of the same scenario", mk().Seed, f)
				}
			}
			if !strings.Contains(string(a["summary.txt"]), "invariants checked") {
				t.Errorf("summary:\n%s", a["summary.txt"])
			}
		})
	}
}

// TestTraceChurn replays a churn trace: a peer leaves and comes back, a
// newcomer joins and leaves, and the round goes on.
func TestTraceChurn(t *testing.T) {
	s, err := LoadScenario("testdata/scenarios/trace.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(s, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.StepsDone != s.Steps || r.Joined != 1 || r.Departures != 2 {
		t.Errorf("seed %d: %d steps, %d joined, %d departures\n%s", s.Seed, r.StepsDone, r.Joined, r.Departures, r.Text())
	}
}

// TestByzantineChurnTwin is acceptance test 2 at a reduced size: peers
// training for real, with churn and a tenth of them byzantine, reach
// about the loss of their honest, churn-free twin, and no honest peer is
// excluded. SHOAL_LONG=1 runs the full byzantine-10pct scenario (200
// peers, 30 steps, a minute or two) and requires the final loss within 5%
// of the twin's.
func TestByzantineChurnTwin(t *testing.T) {
	s, err := LoadScenario("byzantine-10pct")
	if err != nil {
		t.Fatal(err)
	}
	tolerance := 0.05
	if os.Getenv("SHOAL_LONG") == "" {
		if err := (Overrides{Peers: 60, Steps: 10}).Apply(s); err != nil {
			t.Fatal(err)
		}
		tolerance = 0.10
	}
	start := time.Now()
	r, err := Run(s, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d peers, %d steps in %v:\n%s", s.Peers, s.Steps, time.Since(start).Round(time.Second), r.Text())
	if r.Twin == nil || r.Twin.LossRatio == nil || r.Summary.LossEnd == nil {
		t.Fatalf("seed %d: no loss ratio in the report", s.Seed)
	}
	if d := *r.Twin.LossRatio - 1; d > tolerance || d < -tolerance {
		t.Errorf("seed %d: final loss %.4f, the honest twin's %.4f (%+.1f%%)", s.Seed, *r.Summary.LossEnd, *r.Twin.LossEnd, 100*d)
	}
	if r.Summary.HonestExcluded != 0 {
		t.Errorf("seed %d: %d honest peers excluded", s.Seed, r.Summary.HonestExcluded)
	}
	if !(*r.Summary.LossEnd < *r.Summary.LossStart-1) {
		t.Errorf("seed %d: the loss went %.3f → %.3f", s.Seed, *r.Summary.LossStart, *r.Summary.LossEnd)
	}
}

// TestStragglersAndSpares: with machines of very uneven speed and no
// spares, steps wait for their deadline and the report says they waited
// for peers still computing; with spares and twice as many volunteers as
// units, the same round closes its steps without waiting, once the open
// round has admitted its volunteers (at most 8 newcomers a step at
// first, then a quarter of those established: see package tracker).
func TestStragglersAndSpares(t *testing.T) {
	run := func(peers, steps int, spares float64) *Report {
		s, err := LoadScenario("home-volunteers-1k")
		if err != nil {
			t.Fatal(err)
		}
		if err := (Overrides{Peers: peers, Steps: steps}).Apply(s); err != nil {
			t.Fatal(err)
		}
		s.Spec.TargetSamples = 40 * s.Spec.UnitSamples()
		s.Churn.Rate = 0
		s.Compute.Speed.Sigma = 1 // a few machines several times slower than the median
		s.Spares = spares
		r, err := Run(s, RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	slow := run(40, 4, 0)
	if slow.Summary.DeadlineSteps == 0 || slow.Summary.Missing.Computing == 0 {
		t.Fatalf("without spares: %d steps at the deadline, %+v missing\n%s", slow.Summary.DeadlineSteps, slow.Summary.Missing, slow.Text())
	}
	if !strings.Contains(slow.Text(), "still computing") {
		t.Errorf("the summary does not say why the steps waited:\n%s", slow.Text())
	}
	t.Logf("without spares: %d of %d steps at the deadline, missing %+v", slow.Summary.DeadlineSteps, len(slow.Steps), slow.Summary.Missing)
	fast := run(80, 12, 0.25)
	t.Logf("with spares: %d steps at the deadline, median step %.0f s (without: %.0f s)", fast.Summary.DeadlineSteps, fast.Summary.StepSeconds.P50, slow.Summary.StepSeconds.P50)
	for _, st := range fast.Steps[len(fast.Steps)-3:] {
		if st.Missing != nil || st.Units != 50 {
			t.Errorf("with spares, step %d: %d members, %d units dealt, at the deadline %v (want 50 units, not at the deadline)\n%s", st.Step, st.Members, st.Units, st.Missing != nil, fast.Text())
		}
	}
}

// TestGossipDuplicates: network.duplicates multiplies what peers take in
// of gossip and the time it takes, with updates delivered one by one or
// in batches, and the report's v1 floor says so.
func TestGossipDuplicates(t *testing.T) {
	for _, delivery := range []string{"every", "batched"} {
		run := func(dup float64) *Report {
			s, err := LoadScenario("home-volunteers-1k")
			if err != nil {
				t.Fatal(err)
			}
			if err := (Overrides{Peers: 40, Steps: 3, Delivery: delivery}).Apply(s); err != nil {
				t.Fatal(err)
			}
			s.Spec.TargetSamples = 40 * s.Spec.UnitSamples()
			s.Churn.Rate = 0
			s.Compute.Speed.Sigma = 0
			s.Compute.CheckpointBytes = 1 << 10 // keep catch-ups out of the download
			s.Compute.ResidualBytes = 1 << 10
			s.Network.Duplicates = dup
			r, err := Run(s, RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		one, three := run(0), run(3)
		if ratio := three.Summary.Download.P50 / one.Summary.Download.P50; ratio < 2.8 || ratio > 3.2 {
			t.Errorf("%s: median download %.0f B with 3 duplicates, %.0f B without (%.2f×, want 3×)", delivery, three.Summary.Download.P50, one.Summary.Download.P50, ratio)
		}
		if !(three.Summary.StepSeconds.P50 > one.Summary.StepSeconds.P50) {
			t.Errorf("%s: steps of %.0f s with duplicates, %.0f s without", delivery, three.Summary.StepSeconds.P50, one.Summary.StepSeconds.P50)
		}
		if !strings.Contains(three.V1.Verdict, "3.0× gossip duplicates") || !strings.Contains(one.V1.Verdict, "not modelled") {
			t.Errorf("%s: verdicts %q and %q", delivery, three.V1.Verdict, one.V1.Verdict)
		}
	}
}
