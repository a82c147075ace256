package engine_test

import (
	"testing"
	"time"

	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/wire"
)

// TestSimWithholderLeftOut: a worker that sends its updates without
// their payload and serves none does not halt the round: the tracker,
// which cannot fetch those payloads, leaves its updates out of every
// Close, the round keeps finalising, and the withholder is excluded once
// it has withheld tracker.WithheldLimit updates.
func TestSimWithholderLeftOut(t *testing.T) {
	const withholder = "peer-00"
	c := costCluster(t, 6, 1)
	c.Withhold(withholder)
	waitSteps(t, c, 6, 6*time.Hour)
	tr := c.Tracker()
	withheld := 0
	for _, ev := range c.Events {
		if ev.Kind == wire.EventWithheld {
			if ev.Peer != withholder {
				t.Errorf("%v: an honest peer's update was left out: %s", ev.At, ev.Detail)
			}
			withheld++
		}
	}
	e := tr.Ledger()[withholder]
	if e.Units != 0 {
		t.Errorf("the withholder had %d updates included", e.Units)
	}
	if !e.Excluded || e.Withheld < tracker.WithheldLimit {
		t.Errorf("the withholder's ledger entry %+v, want excluded for withheld payloads", e)
	}
	if withheld < tracker.WithheldLimit {
		t.Errorf("%d withheld events, want at least %d", withheld, tracker.WithheldLimit)
	}
}
