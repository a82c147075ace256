package node

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker/wire"
)

// recorder is Effects that writes down what it is asked, in order, and
// a Holder of blobs and checkpoints in maps.
type recorder struct {
	log     []string
	blobs   map[cid.Cid][]byte
	ckpts   map[cid.Cid]bool
	headErr error
	fetches []Fetch
}

func newRecorder() *recorder {
	return &recorder{blobs: map[cid.Cid][]byte{}, ckpts: map[cid.Cid]bool{}}
}

func (r *recorder) Event(ev Event) { r.log = append(r.log, "event "+string(ev.Kind)) }
func (r *recorder) Head(step uint64, id cid.Cid) error {
	r.log = append(r.log, fmt.Sprintf("head %d", step))
	return r.headErr
}
func (r *recorder) Publish(m wire.Msg) { r.log = append(r.log, "publish "+m.Kind().String()) }
func (r *recorder) Run(j Job)          { r.log = append(r.log, fmt.Sprintf("run %T", j)) }
func (r *recorder) Fetch(f Fetch) {
	r.log = append(r.log, "fetch "+f.CID.String())
	r.fetches = append(r.fetches, f)
}
func (r *recorder) HasBlob(id cid.Cid) bool { _, ok := r.blobs[id]; return ok }
func (r *recorder) PutBlob(b []byte) (cid.Cid, error) {
	id := content.Sum(b)
	r.blobs[id] = b
	r.log = append(r.log, "put "+id.String())
	return id, nil
}
func (r *recorder) HasCheckpoint(id cid.Cid) bool { return r.ckpts[id] }

// TestLoop checks the driver contract: an inline payload is in the store
// before the core sees its update (so the Close does not fetch it),
// content the store holds is answered at once without a fetch, and the
// head is persisted before what follows from it is published.
func TestLoop(t *testing.T) {
	n, s := testNode(t)
	fx := newRecorder()
	l := NewLoop(n, fx, fx)
	now := time.Unix(1_800_000_000, 0)
	g := content.Sum([]byte("C0"))
	if err := l.Flush(now); err != nil {
		t.Fatal(err)
	}
	receive := func(from string, m wire.Msg) {
		t.Helper()
		refused, err := l.Receive(now, from, m)
		if refused != nil || err != nil {
			t.Fatalf("%s from %s: refused %v, error %v", m.Kind(), from, refused, err)
		}
	}
	receive(trackerID, &wire.Open{Round: s.ID(), Step: 0, Base: g, Members: []string{"peer-b"}, Units: 1})
	data := []byte("peer-b's update")
	u := &wire.Update{Round: s.ID(), Step: 0, Base: g, Unit: 0, Samples: 20, Raw: g, Residual: g,
		Payload: content.Sum(data), Size: uint64(len(data)), Data: data}
	fx.log = nil
	receive("peer-b", u)
	if len(fx.log) == 0 || fx.log[0] != "put "+u.Payload.String() {
		t.Fatalf("the payload was not placed first: %v", fx.log)
	}
	fx.fetches = nil
	receive(trackerID, &wire.Close{Round: s.ID(), Step: 0, Base: g, Included: []wire.Included{{Peer: "peer-b", Unit: 0, Payload: u.Payload, Weight: 20}}})
	if len(fx.fetches) != 0 {
		t.Fatalf("content in the store was fetched: %+v", fx.fetches)
	}
	if !slices.Contains(fx.log, "run node.ApplyJob") {
		t.Fatalf("the Close with every payload at hand did not start the apply: %v", fx.log)
	}
	// The apply's result: the head is kept before the Commit goes out.
	c1 := content.Sum([]byte("C1"))
	fx.ckpts[c1] = true
	fx.log = nil
	apply := ApplyJob{Step: 0, Base: g, Included: []wire.Included{{Peer: "peer-b", Unit: 0, Payload: u.Payload, Weight: 20}}}
	if err := l.Done(now, Result{Job: apply, Result: c1}); err != nil {
		t.Fatal(err)
	}
	head, commit := slices.Index(fx.log, "head 1"), slices.Index(fx.log, "publish commit")
	if head < 0 || commit < 0 || head > commit {
		t.Fatalf("the head was not kept before the Commit went out: %v", fx.log)
	}
	// A failure to keep the head stops the node.
	fx.headErr = errors.New("disk full")
	n2, _ := testNode(t)
	l2 := NewLoop(n2, fx, fx)
	if err := l2.Flush(now); err != nil {
		t.Fatal(err)
	}
	l2.node.setHead(1, c1)
	if err := l2.Flush(now); err == nil || !errors.Is(err, fx.headErr) {
		t.Fatalf("a head that could not be kept: %v", err)
	}
}
