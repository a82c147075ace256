package node

import (
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// TestPresentAll: a Close whose payloads the driver's PresentAll says are
// all present is applied without a fetch; when PresentAll says no, each
// payload is looked up with Present, and the missing ones are fetched.
func TestPresentAll(t *testing.T) {
	g := content.Sum([]byte("C0"))
	var included []wire.Included
	for i := range 3 {
		included = append(included, wire.Included{Peer: "peer-b", Unit: uint32(i), Payload: content.Sum([]byte{byte(i)}), Weight: 20})
	}
	wire.SortIncluded(included)
	for _, tc := range []struct {
		name           string
		all            bool
		present        func(cid.Cid) bool
		apply, fetches int
	}{
		{"all present", true, func(cid.Cid) bool { return false }, 1, 0},
		{"each present", false, func(cid.Cid) bool { return true }, 1, 0},
		{"one missing", false, func(id cid.Cid) bool { return !id.Equals(included[1].Payload) }, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := round.Defaults()
			s.Model = round.Model{Arch: "mlp", Vocab: 256, Ctx: 16, Dim: 16, Layers: 1, Hidden: 64, Window: 4, Seed: 7}
			s.Dataset = round.Dataset{Builtin: true}
			s.InnerSteps, s.Batch = 5, 4
			s.Inner.LR = 0.01
			s.TargetSamples = 40
			s.Deadline = time.Minute
			s.Trackers = []string{trackerID}
			asked := 0
			n, err := New(Config{ID: "me", Role: wire.RoleWorker, Spec: s, Genesis: g, Present: tc.present,
				PresentAll: func(in []wire.Included) bool {
					asked++
					if len(in) != len(included) {
						t.Errorf("PresentAll asked about %d updates, want %d", len(in), len(included))
					}
					return tc.all
				}})
			if err != nil {
				t.Fatal(err)
			}
			cl := &wire.Close{Round: s.ID(), Step: 0, Base: g, Included: included}
			if err := n.Receive(time.Unix(1_800_000_000, 0), trackerID, cl); err != nil {
				t.Fatal(err)
			}
			r := n.Ready()
			apply := 0
			for _, j := range r.Jobs {
				if _, ok := j.(ApplyJob); ok {
					apply++
				}
			}
			if apply != tc.apply || len(r.Fetches) != tc.fetches {
				t.Fatalf("%d apply jobs and %d fetches, want %d and %d", apply, len(r.Fetches), tc.apply, tc.fetches)
			}
			if asked == 0 {
				t.Fatal("PresentAll was not asked")
			}
		})
	}
}
