package simulations

import (
	"bytes"
	"os"
	"testing"
)

// TestTrackerGroupLeaderKilled runs the tracker-group scenario at a
// reduced size (24 peers, 10 steps): a group of three trackers whose
// leader is killed for good 20 minutes in, and whose next leader crashes
// 40 minutes in and restarts a minute later. A new leader must take
// over within 10 s of the first kill; every step is finalised once, to
// one checkpoint (the invariants, checked after every event, include
// that no Final names another checkpoint for a step); the honest peers
// end on the last Final; and the run, elections included, is the same
// for the same seed. SHOAL_LONG=1 runs the full scenario.
func TestTrackerGroupLeaderKilled(t *testing.T) {
	load := func() *Scenario {
		s, err := LoadScenario("tracker-group")
		if err != nil {
			t.Fatal(err)
		}
		if os.Getenv("SHOAL_LONG") == "" {
			if err := (Overrides{Peers: 24, Steps: 10}).Apply(s); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	s := load()
	r, err := Run(s, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d:\n%s", s.Seed, r.Text())
	if err := r.Check(); err != nil {
		t.Error(err)
	}
	g := r.Group
	if g == nil || g.Members != 3 {
		t.Fatalf("tracker group %+v, want 3 members", g)
	}
	if len(g.Kills) != 2 || !g.Kills[0].ForGood || g.Kills[1].ForGood {
		t.Fatalf("kills %+v: want the first leader killed for good, the second crashed", g.Kills)
	}
	if g.Kills[0].Leader == g.Kills[1].Leader {
		t.Errorf("the same member %s was killed twice: the second kill must take the new leader", g.Kills[0].Leader)
	}
	// The second kill leaves one member up: no quorum until the crashed
	// one is back a minute later.
	if k := g.Kills[1]; k.Takeover < 60 {
		t.Errorf("a member led %.1fs after the second kill, with one member of three up", k.Takeover)
	}
	if len(g.Leaders) < 3 {
		t.Errorf("leaders %+v: want one before each kill and one after the last", g.Leaders)
	}
	for i := 1; i < len(g.Leaders); i++ {
		if g.Leaders[i].Term <= g.Leaders[i-1].Term {
			t.Errorf("leaders %+v: terms do not grow", g.Leaders)
		}
	}

	// The same seed, the same run.
	again, err := Run(load(), RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := r.JSON(), again.JSON(); !bytes.Equal(a, b) {
		t.Errorf("two runs of the same scenario and seed differ (%d and %d bytes of report)", len(a), len(b))
	}
}
