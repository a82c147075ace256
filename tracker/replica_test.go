package tracker

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/shoal-network/shoal/tracker/wire"
)

// input is one thing a driver gives a tracker.
type input func(tr *Tracker) error

// twinInputs draws the next input for tr from rng: hellos, the updates of
// the open step (some replicas disagreeing), commits (some mismatched),
// payload outcomes and ticks, over several steps.
func twinInputs(rng *rand.Rand, tr *Tracker, now *time.Time, workers []string, pending *[]Fetch) input {
	st := tr.st
	at := *now
	switch k := rng.IntN(10); {
	case k < 2:
		*now = now.Add(time.Duration(1+rng.IntN(4000)) * time.Millisecond)
		at = *now
		return func(tr *Tracker) error { return tr.Tick(at) }
	case k < 4:
		p := workers[rng.IntN(len(workers))]
		step, head := tr.Head()
		return func(tr *Tracker) error {
			return tr.Receive(at, p, &wire.Hello{Round: tr.Round(), Role: wire.RoleWorker, Step: step, Head: head, Time: unixTime(at)})
		}
	case k < 5 && len(*pending) > 0:
		f := (*pending)[0]
		*pending = (*pending)[1:]
		ok := rng.IntN(8) > 0
		return func(tr *Tracker) error { tr.Held(at, f.Payload, ok); return nil }
	case k < 8 && st.Phase == PhaseOpen:
		keys := slices.SortedFunc(maps.Keys(tr.assigned), cmpUnitCopy)
		c := keys[rng.IntN(len(keys))]
		peer := tr.assigned[c]
		raw := fmt.Sprintf("raw/%d", c.unit)
		if rng.IntN(10) == 0 {
			raw += "/" + peer
		}
		data := fmt.Appendf(nil, "%s/%d/%d/%d/%d", peer, st.Step, st.Attempt, c.unit, c.replica)
		u := &wire.Update{Round: tr.Round(), Step: st.Step, Attempt: st.Attempt, Base: st.Base, Unit: c.unit, Replica: c.replica,
			Samples: uint32(tr.spec.UnitSamples()), Loss: 2.5, Raw: cidOf(raw), Residual: cidOf("residual/" + peer),
			Payload: cidOf(string(data)), Size: uint64(len(data))}
		return func(tr *Tracker) error { return tr.Receive(at, peer, u) }
	case k == 8 && tr.late != nil:
		// An update of the last closed step's deal, late (see late.go).
		o := st.Late.Open
		keys := slices.SortedFunc(maps.Keys(tr.late.assigned), cmpUnitCopy)
		c := keys[rng.IntN(len(keys))]
		peer := tr.late.assigned[c]
		raw := fmt.Sprintf("raw/%d", c.unit)
		if rng.IntN(4) == 0 {
			raw += "/" + peer
		}
		data := fmt.Appendf(nil, "%s/%d/%d/%d/%d", peer, o.Step, o.Attempt, c.unit, c.replica)
		u := &wire.Update{Round: tr.Round(), Step: o.Step, Attempt: o.Attempt, Base: o.Base, Unit: c.unit, Replica: c.replica,
			Samples: uint32(tr.spec.UnitSamples()), Loss: 2.5, Raw: cidOf(raw), Residual: cidOf("residual/" + peer),
			Payload: cidOf(string(data)), Size: uint64(len(data))}
		return func(tr *Tracker) error { return tr.Receive(at, peer, u) }
	case st.Phase == PhaseClosed:
		p := workers[rng.IntN(len(workers))]
		result := cidOf(fmt.Sprintf("result/%d", st.Step))
		if rng.IntN(12) == 0 {
			result = cidOf("odd/" + p)
		}
		c := &wire.Commit{Round: tr.Round(), Step: st.Step, Attempt: st.Attempt, Base: st.Base, Result: result}
		return func(tr *Tracker) error { return tr.Receive(at, p, c) }
	}
	*now = now.Add(time.Second)
	at = *now
	return func(tr *Tracker) error { return tr.Tick(at) }
}

// outputOf is a Ready's messages and fetches in a comparable form.
func outputOf(t *testing.T, rd Ready) string {
	var b bytes.Buffer
	for _, m := range rd.Publish {
		enc, err := wire.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%x\n", enc)
	}
	for _, f := range rd.Fetch {
		fmt.Fprintf(&b, "fetch %s %d %s\n", f.Payload, f.Size, f.Provider)
	}
	for _, e := range rd.Events {
		fmt.Fprintf(&b, "event %s %d %s %s\n", e.Kind, e.Step, e.Peer, e.Detail)
	}
	return b.String()
}

// TestRestoreIsTheSameTracker restores a tracker from its Snapshot at
// many points of random rounds and checks that the twin, given the same
// inputs as the original from there on, publishes, fetches and decides
// exactly what the original does, and snapshots to the same bytes.
func TestRestoreIsTheSameTracker(t *testing.T) {
	for seed := uint64(1); seed <= 9; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 16))
			spec := testSpec(4, 0.5)
			if seed > 6 {
				// Quorum closing and late updates (late.go).
				spec.Quorum, spec.Grace, spec.LateWeight = 0.5, 2*time.Second, 0.5
			}
			workers := []string{"w1", "w2", "w3", "w4", "w5"}
			cfg := Config{Spec: spec, Genesis: genesis, AuditSecret: bytes.Repeat([]byte{7}, 32)}
			now := t0
			tr, err := New(cfg, nil, now)
			if err != nil {
				t.Fatal(err)
			}
			var pending []Fetch
			take := func(tr *Tracker) Ready { return tr.Ready() }
			take(tr)
			var twin *Tracker
			merges := 0
			for i := range 1500 {
				if i%97 == 13 {
					snap, err := tr.Snapshot()
					if err != nil {
						t.Fatal(err)
					}
					if twin, err = Restore(cfg, snap); err != nil {
						t.Fatalf("seed %d input %d: %v", seed, i, err)
					}
					again, err := twin.Snapshot()
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(snap, again) {
						t.Fatalf("seed %d input %d: the restored tracker snapshots otherwise:\n%s\n%s", seed, i, snap, again)
					}
				}
				in := twinInputs(rng, tr, &now, workers, &pending)
				err := in(tr)
				rd := take(tr)
				pending = append(pending, rd.Fetch...)
				for _, e := range rd.Events {
					if e.Kind == wire.EventMerge {
						merges++
					}
				}
				if twin == nil {
					continue
				}
				terr := in(twin)
				trd := take(twin)
				if fmt.Sprint(err) != fmt.Sprint(terr) {
					t.Fatalf("seed %d input %d: original says %v, twin %v", seed, i, err, terr)
				}
				if a, b := outputOf(t, rd), outputOf(t, trd); a != b {
					t.Fatalf("seed %d input %d: original's output\n%s\ntwin's\n%s", seed, i, a, b)
				}
				if i%10 == 0 {
					a, _ := tr.Snapshot()
					b, _ := twin.Snapshot()
					if !bytes.Equal(a, b) {
						t.Fatalf("seed %d input %d: snapshots differ:\n%s\n%s", seed, i, a, b)
					}
				}
			}
			if step, _ := tr.Step(); step < 3 {
				t.Fatalf("seed %d: only %d steps finalised: the inputs do not exercise the tracker", seed, step)
			}
			if spec.LateWeight > 0 && merges == 0 {
				t.Fatalf("seed %d: no Close merged a late update: the inputs do not exercise late.go", seed)
			}
		})
	}
}

func TestRestoreRefusesOtherRound(t *testing.T) {
	spec := testSpec(2, 0)
	tr, err := New(Config{Spec: spec, Genesis: genesis}, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tr.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	other := testSpec(3, 0)
	if _, err := Restore(Config{Spec: other, Genesis: genesis}, snap); err == nil {
		t.Fatal("a snapshot of another round restored")
	}
	if _, err := Restore(Config{Spec: spec, Genesis: genesis}, []byte("{")); err == nil {
		t.Fatal("a damaged snapshot restored")
	}
}
