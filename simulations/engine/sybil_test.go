package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/simulations"
	"github.com/shoal-network/shoal/simulations/engine"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// TestSybilsCostNoNodes: Sybil identities send their Hellos, their votes
// on every Close and their junk Updates to the tracker, without a node
// each.
func TestSybilsCostNoNodes(t *testing.T) {
	const peers, seed = 8, 3
	c := costCluster(t, peers, seed)
	var ids []engine.Sybil
	for i, k := range []engine.SybilKind{engine.SybilSilent, engine.SybilSilent, engine.SybilVoter, engine.SybilVoter, engine.SybilJunk, engine.SybilJunk} {
		role := wire.RoleObserver
		if k == engine.SybilJunk || i == 0 {
			role = wire.RoleWorker
		}
		ids = append(ids, engine.Sybil{ID: fmt.Sprintf("sybil-%d", i), Kind: k, Role: role})
	}
	if err := c.AddSybils(ids, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.AddSybils(ids[:1], 0); err == nil {
		t.Error("a Sybil added twice")
	}
	if err := c.RunFor(30 * time.Minute); err != nil && !engine.IsTimeout(err) {
		t.Fatalf("seed %d: %v", seed, err)
	}
	if n := len(c.Nodes()); n != peers {
		t.Errorf("%d nodes, want %d", n, peers)
	}
	closes := 0
	for _, st := range c.Steps {
		if st.Closed > 0 {
			closes++
		}
	}
	hellos := len(ids) * int(30*time.Minute/round.HeartbeatInterval(c.Spec()))
	if got, min := c.SybilMessages(), hellos+2*closes+2; got < min {
		t.Errorf("seed %d: the Sybils sent %d messages, want at least %d (%d closes)", seed, got, min, closes)
	}
	if !strings.HasPrefix(engine.SybilVoter.String(), "voter") {
		t.Errorf("kind %v", engine.SybilVoter)
	}
}

// TestReplicated: what the cluster says of a unit's copies is what the
// Open dealt.
func TestReplicated(t *testing.T) {
	c := costCluster(t, 8, 1)
	if err := c.RunFor(3 * time.Minute); err != nil && !engine.IsTimeout(err) {
		t.Fatal(err)
	}
	o := c.Opens[0]
	if o == nil {
		t.Fatal("no Open")
	}
	copies := map[int]int{}
	for _, a := range round.Assign(c.Spec().Seed, wire.AssignStep(o.Step, o.Attempt), o.Members, int(o.Units), c.Spec().VerificationRate) {
		copies[a.Unit]++
	}
	n := 0
	for u := range int(o.Units) {
		if got := c.Replicated(0, o.Attempt, uint32(u)); got != (copies[u] > 1) {
			t.Errorf("unit %d: replicated %v, dealt %d copies", u, got, copies[u])
		}
		if copies[u] > 1 {
			n++
		}
	}
	if n == 0 || c.Replicated(0, o.Attempt+1, 0) {
		t.Errorf("%d units replicated; an attempt not dealt replicated: %v", n, c.Replicated(0, o.Attempt+1, 0))
	}
}

// recorder is an engine that notes the payloads of the updates it makes.
type recorder struct {
	node.Engine
	payloads []cid.Cid
}

func (r *recorder) Run(j node.Job) node.Result {
	res := r.Engine.Run(j)
	if res.Update != nil {
		r.payloads = append(r.payloads, res.Update.Payload)
	}
	return res
}

// TestWithholderServesNothing: a withholder's updates reach no one with
// their payload, and no one can fetch it, whatever the protocol then
// makes of them.
func TestWithholderServesNothing(t *testing.T) {
	const peers, seed = 4, 5
	spec := testSpec(peers)
	genesis, err := (&simulations.CostEngine{Store: engine.NewStore(engine.NewPool()), Spec: spec}).Genesis()
	if err != nil {
		t.Fatal(err)
	}
	c, err := engine.New(engine.Config{Spec: spec, Seed: seed, Genesis: genesis, Check: engine.Invariants(map[string]bool{"peer-00": true})})
	if err != nil {
		t.Fatal(err)
	}
	shared := simulations.NewCostShared()
	rec := &recorder{}
	for i := range peers {
		id := peerName(i)
		if err := c.AddNode(id, wire.RoleWorker, func(st *engine.Store) (node.Engine, error) {
			e := &simulations.CostEngine{Store: st, Spec: spec, Peer: id, Shared: shared}
			if i == 0 {
				rec.Engine = e
				return rec, nil
			}
			return e, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	c.Withhold("peer-00")
	if err := c.RunFor(20 * time.Minute); err != nil && !engine.IsTimeout(err) {
		t.Fatalf("seed %d: %v", seed, err)
	}
	if len(rec.payloads) == 0 {
		t.Fatalf("seed %d: the withholder trained nothing", seed)
	}
	for _, id := range c.Nodes()[1:] {
		for _, p := range rec.payloads {
			if c.Store(id).HasBlob(p) {
				t.Errorf("seed %d: %s holds the withheld payload %s", seed, id, p)
			}
		}
	}
}
