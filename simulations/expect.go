package simulations

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shoal-network/shoal/simulations/engine"
)

// Expect is what a scenario requires of its run, checked once it is over
// (see Report.Expectations). Every key is optional; a scenario without an
// expect block requires nothing.
//
//	expect:
//	  loss_vs_twin: 5%          # final held-out loss at most 5% above the honest twin's (needs twin and real training)
//	  no_honest_excluded: true  # the tracker excluded no honest peer
//	  cheaters_excluded: {behaviours: [adaptive-liar], by_step: 20}  # every such peer excluded by then
//	  no_stuck_steps: {margin: 5m}   # no step open, or closed and not final, longer than its deadline + margin
//	  steps_finalised: 80%      # at least this many steps finalised (a count, or a share of steps)
//	  honest_hold_head: true    # live honest peers hold the last finalised checkpoint, none another one
//	  new_leader_within: 10s    # after each leader kill (network.leader_kills), a live member leads within this
type Expect struct {
	LossVsTwin       *Share         `yaml:"loss_vs_twin"`
	NoHonestExcluded bool           `yaml:"no_honest_excluded"`
	CheatersExcluded *CheaterExpect `yaml:"cheaters_excluded"`
	NoStuckSteps     *StuckExpect   `yaml:"no_stuck_steps"`
	StepsFinalised   *CountOrShare  `yaml:"steps_finalised"`
	HonestHoldHead   bool           `yaml:"honest_hold_head"`
	NewLeaderWithin  *Duration      `yaml:"new_leader_within,omitempty"`
	Line             int            `yaml:"-"` // of the block, for messages
	lines            map[string]int // of each key
}

// CheaterExpect requires every peer of the listed behaviours that was
// there at the start to be excluded by step ByStep.
type CheaterExpect struct {
	Behaviours []string `yaml:"behaviours"`
	ByStep     uint64   `yaml:"by_step"`
}

// StuckExpect bounds how long a step may stay open, or closed without a
// Final: its deadline plus Margin.
type StuckExpect struct {
	Margin Duration `yaml:"margin"`
}

// Share is a fraction written as "5%" or 0.05.
type Share float64

func (s *Share) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseShare(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*s = Share(v)
	return nil
}

func (s Share) MarshalYAML() (any, error) { return fmt.Sprintf("%g%%", 100*float64(s)), nil }

func parseShare(v string) (float64, error) {
	t := strings.TrimSpace(v)
	pct := strings.HasSuffix(t, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if pct {
		f /= 100
	}
	if err != nil || !(f >= 0) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a share such as 5%% or 0.05", v)
	}
	return f, nil
}

// CountOrShare is a count ("25") or a share of a total ("80%").
type CountOrShare struct {
	Count int
	Share float64 // when written with %
}

func (c *CountOrShare) UnmarshalYAML(n *yaml.Node) error {
	t := strings.TrimSpace(n.Value)
	if strings.HasSuffix(t, "%") {
		v, err := parseShare(t)
		if err != nil || v > 1 {
			return fmt.Errorf("line %d: %q is not a share from 0%% to 100%%", n.Line, n.Value)
		}
		c.Share = v
		return nil
	}
	v, err := strconv.Atoi(t)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a count such as 25 or a share such as 80%%", n.Line, n.Value)
	}
	c.Count = v
	return nil
}

func (c CountOrShare) MarshalYAML() (any, error) {
	if c.Share > 0 {
		return fmt.Sprintf("%g%%", 100*c.Share), nil
	}
	return c.Count, nil
}

// of returns the count the value asks for out of total.
func (c CountOrShare) of(total int) int {
	if c.Share > 0 {
		return int(math.Ceil(c.Share*float64(total) - 1e-9))
	}
	return c.Count
}

func (e *Expect) UnmarshalYAML(n *yaml.Node) error {
	type plain Expect
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: expect: want a mapping", n.Line)
	}
	// A decoder handing a node to UnmarshalYAML does not pass on its
	// refusal of unknown fields: check the keys here.
	if err := knownKeys(n, reflect.TypeFor[Expect]()); err != nil {
		return err
	}
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*e = Expect(p)
	e.Line = n.Line
	e.lines = map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		e.lines[n.Content[i].Value] = n.Content[i].Line
	}
	return nil
}

// knownKeys refuses, with their line, the keys of a mapping (and of the
// mappings in it) that name no field of the struct type t.
func knownKeys(n *yaml.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
		return nil
	}
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" {
			fields[name] = f.Type
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		ft, ok := fields[k.Value]
		if !ok {
			return fmt.Errorf("line %d: field %s not found in type simulations.%s", k.Line, k.Value, t.Name())
		}
		if reflect.PointerTo(ft).Implements(reflect.TypeFor[yaml.Unmarshaler]()) {
			continue
		}
		if err := knownKeys(n.Content[i+1], ft); err != nil {
			return err
		}
	}
	return nil
}

// check reports what is wrong with the expectations of s.
func (e *Expect) check(s *Scenario) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		line := e.lines[key]
		if line == 0 {
			line = e.Line
		}
		errs = append(errs, fmt.Errorf("line %d: expect.%s: %s", line, key, fmt.Sprintf(format, args...)))
	}
	if e.LossVsTwin != nil && (!s.Twin || s.Training != "real") {
		bad("loss_vs_twin", "needs twin: true and training: real")
	}
	if c := e.CheatersExcluded; c != nil {
		if len(c.Behaviours) == 0 {
			bad("cheaters_excluded", "list the behaviours whose peers must be excluded")
		}
		for _, b := range c.Behaviours {
			if _, err := ParseBehaviour(b); err != nil && !slices.Contains(SybilBehaviours, Behaviour(b)) {
				bad("cheaters_excluded", "unknown behaviour %q (want one of %v or %v)", b, Behaviours, SybilBehaviours)
			}
		}
		if c.ByStep < 1 {
			bad("cheaters_excluded", "by_step must be at least 1")
		}
	}
	if e.NewLeaderWithin != nil && len(s.Network.LeaderKills) == 0 {
		bad("new_leader_within", "needs network.leader_kills (and a tracker group)")
	}
	if c := e.StepsFinalised; c != nil && c.Share == 0 && c.Count > s.Steps {
		bad("steps_finalised", "%d is more than the scenario's %d steps", c.Count, s.Steps)
	}
	return errors.Join(errs...)
}

// ExpectRow is one expectation and how the run met it.
type ExpectRow struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Pass bool   `json:"pass"`
}

// Failed returns the expectations the run did not meet.
func (r *Report) Failed() []ExpectRow {
	var out []ExpectRow
	for _, e := range r.Expectations {
		if !e.Pass {
			out = append(out, e)
		}
	}
	return out
}

// ExpectError is the error of a run that failed some of its scenario's
// expectations.
type ExpectError struct {
	Scenario string
	Failed   []ExpectRow
	Of       int
}

func (e *ExpectError) Error() string {
	parts := make([]string, len(e.Failed))
	for i, f := range e.Failed {
		parts[i] = fmt.Sprintf("%s (want %s, got %s)", f.Name, f.Want, f.Got)
	}
	return fmt.Sprintf("scenario %s: %d of %d expectations failed: %s", e.Scenario, len(e.Failed), e.Of, strings.Join(parts, "; "))
}

// Check returns an *ExpectError if the run failed an expectation.
func (r *Report) Check() error {
	if f := r.Failed(); len(f) > 0 {
		return &ExpectError{Scenario: r.Scenario, Failed: f, Of: len(r.Expectations)}
	}
	return nil
}

// evaluate checks the run against the scenario's expectations.
func evaluate(s *Scenario, rep *Report, r *runResult) []ExpectRow {
	e := s.Expect
	if e == nil {
		return nil
	}
	var rows []ExpectRow
	add := func(name, want, got string, pass bool) {
		rows = append(rows, ExpectRow{Name: name, Want: want, Got: got, Pass: pass})
	}
	if r.broken != "" || rep.Invariants.Checked {
		add("invariants", "held after every event", map[bool]string{true: "held", false: r.broken}[r.broken == ""], r.broken == "")
	}
	if e.LossVsTwin != nil {
		want := fmt.Sprintf("final loss at most %g%% above the twin's", 100*float64(*e.LossVsTwin))
		switch t := rep.Twin; {
		case t == nil || t.LossRatio == nil:
			add("loss_vs_twin", want, "no loss to compare (no step finalised, or its checkpoint held by no one)", false)
		default:
			d := *t.LossRatio - 1
			add("loss_vs_twin", want, fmt.Sprintf("%+.2f%%", 100*d), d <= float64(*e.LossVsTwin)+1e-9)
		}
	}
	if e.NoHonestExcluded {
		add("no_honest_excluded", "0 honest peers excluded", fmt.Sprintf("%d excluded", rep.Summary.HonestExcluded), rep.Summary.HonestExcluded == 0)
	}
	if c := e.CheatersExcluded; c != nil {
		var n, ok int
		var late []string
		var latest uint64
		for _, id := range sortedIDs(r.cheaters) {
			if !slices.Contains(c.Behaviours, string(r.cheaters[id])) {
				continue
			}
			n++
			en := r.ledger[id]
			if en.Excluded && en.ExcludedAt <= c.ByStep {
				ok++
				latest = max(latest, en.ExcludedAt)
			} else if len(late) < 3 {
				late = append(late, id)
			}
		}
		got := fmt.Sprintf("%d of %d excluded by step %d", ok, n, c.ByStep)
		if ok > 0 {
			got += fmt.Sprintf(" (the last at step %d)", latest)
		}
		if len(late) > 0 {
			got += fmt.Sprintf("; not: %s", strings.Join(late, ", "))
			if n-ok > len(late) {
				got += ", …"
			}
		}
		add("cheaters_excluded", fmt.Sprintf("every %s there at the start excluded by step %d", strings.Join(c.Behaviours, ", "), c.ByStep), got, ok == n)
	}
	if st := e.NoStuckSteps; st != nil {
		limit := s.Spec.Deadline + time.Duration(st.Margin)
		worst, step, what := time.Duration(0), uint64(0), ""
		for _, x := range r.allSteps {
			open, closed := stepSpans(x, r.virtual)
			if open > worst {
				worst, step, what = open, x.Step, "open"
			}
			if closed > worst {
				worst, step, what = closed, x.Step, "closed without a Final"
			}
		}
		got := "no step"
		if what != "" {
			got = fmt.Sprintf("step %d %s for %v", step, what, worst.Round(time.Second))
		}
		add("no_stuck_steps", fmt.Sprintf("no step open, or closed without a Final, longer than %v", limit), got, worst <= limit)
	}
	if c := e.StepsFinalised; c != nil {
		want := c.of(s.Steps)
		add("steps_finalised", fmt.Sprintf("at least %d of %d", want, s.Steps), fmt.Sprintf("%d", rep.StepsDone), rep.StepsDone >= want)
	}
	if e.HonestHoldHead {
		h := r.heads
		got := fmt.Sprintf("%d of %d live honest peers hold C_%d = the Final, %d another checkpoint", h.same, h.live, h.step, h.other)
		if h.step == 0 {
			got = "no step finalised"
		}
		add("honest_hold_head", "at least half the live honest peers hold the last Final, none another checkpoint", got,
			h.step > 0 && h.other == 0 && 2*h.same >= h.live)
	}
	if w := e.NewLeaderWithin; w != nil {
		want := fmt.Sprintf("a new leader within %v of each leader killed for good", time.Duration(*w))
		var got []string
		n := 0
		pass := rep.Group != nil
		if g := rep.Group; g != nil {
			for _, k := range g.Kills {
				if !k.ForGood {
					continue
				}
				n++
				if k.Takeover < 0 {
					got = append(got, fmt.Sprintf("killed at %.0fs: none", k.At))
					pass = false
					continue
				}
				got = append(got, fmt.Sprintf("killed at %.0fs: %.1fs", k.At, k.Takeover))
				pass = pass && k.Takeover <= time.Duration(*w).Seconds()
			}
		}
		pass = pass && n == len(s.Network.LeaderKills)
		if len(got) == 0 {
			got = []string{"no leader killed"}
		}
		add("new_leader_within", want, strings.Join(got, "; "), pass)
	}
	return rows
}

// stepSpans returns how long a step stayed open and how long it stayed
// closed without a Final, by the end of the run at end.
func stepSpans(x engine.StepStats, end time.Duration) (open, closed time.Duration) {
	switch {
	case x.Closed == 0:
		return end - x.Opened, 0
	case x.Finalised == 0:
		return x.Closed - x.Opened, end - x.Closed
	}
	return x.Closed - x.Opened, x.Finalised - x.Closed
}

// headCount is how the live honest peers' heads stood against the last
// Final at the end of a run.
type headCount struct {
	step              uint64 // the last finalised step + 1: C_step is its result
	live, same, other int
}
