package node

import (
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/tracker/wire"
)

// Retention is how many steps of content a node keeps, counting the
// current one: the updates and Finals the core remembers, the blobs its
// store keeps (a sweep per new head keeps Retention generations), the
// engine's own recent pseudo-gradients and the checkpoints kept on disk.
// Every such bound derives from it, so that no part forgets what another
// still needs.
const Retention = 4

// Effects is how a driver carries out what the core asks for: with
// goroutines and real time (the daemon) or events and virtual time (the
// simulator). What is done, and in which order, is the Loop's.
type Effects interface {
	// Event reports something that happened, for logs and status.
	Event(Event)
	// Head persists the checkpoint the node now holds as C_step (a
	// restart resumes from it) and sweeps what the node no longer needs
	// (see Retention). An error stops the node.
	Head(step uint64, head cid.Cid) error
	// Publish gossips a message on the round's topic.
	Publish(wire.Msg)
	// Run starts a job; its result comes back through Loop.Done.
	Run(Job)
	// Fetch starts getting content the store does not hold; the outcome
	// comes back through Loop.Fetched.
	Fetch(Fetch)
}

// Holder is what the Loop asks of the node's store.
type Holder interface {
	HasBlob(id cid.Cid) bool
	PutBlob(data []byte) (cid.Cid, error)
	HasCheckpoint(id cid.Cid) bool
}

// PayloadPutter is a store that keeps an Update's inline payload its own
// way, where it can do better than hash it again (a simulator that has
// checked the message's form knows Data hashes to Payload). The Loop
// uses it when the store has it, and PutBlob otherwise.
type PayloadPutter interface {
	PutPayload(u *wire.Update) error
}

// Loop is the driver contract, written once: it hands the core its
// inputs and carries out its Ready through Effects. Before the core sees
// an Update it keeps, its inline payload goes to the store (the payload
// of any other Update is not stored at all); a fetch of content the
// store holds is answered at once; and each Ready is carried out in one
// order: events, the head (persisted before anything announces it),
// messages, jobs, fetches. A Loop, like the Node it drives, is not safe
// for concurrent use.
type Loop struct {
	node    *Node
	store   Holder
	effects Effects
}

// NewLoop returns the loop that drives n, whose content is in store.
func NewLoop(n *Node, store Holder, fx Effects) *Loop {
	return &Loop{node: n, store: store, effects: fx}
}

// Node returns the state machine the loop drives.
func (l *Loop) Node() *Node { return l.node }

// Receive hands the core a message and carries out what follows. refused, for the
// driver's log, is why the core refused the message; err is a failure of
// an effect, which stops the node.
func (l *Loop) Receive(now time.Time, from string, m wire.Msg) (refused, err error) {
	var place func(*wire.Update)
	if u, ok := m.(*wire.Update); ok && len(u.Data) > 0 && !l.store.HasBlob(u.Payload) {
		// Only the payload of an update the core keeps is stored: one of
		// a unit copy dealt to its sender, not seen before. Junk, from
		// whomever and by whatever path it came, costs no storage.
		place = func(u *wire.Update) {
			if err := l.place(u); err != nil {
				// The core will fetch the payload as it fetches any other.
				l.effects.Event(Event{Kind: wire.EventError, Step: u.Step, Detail: fmt.Sprintf("cannot keep the payload of %s's update: %v", from, err)})
			}
		}
	}
	refused = l.node.receive(now, from, m, place)
	return refused, l.flush(now)
}

// place puts an update's inline payload in the store.
func (l *Loop) place(u *wire.Update) error {
	if pp, ok := l.store.(PayloadPutter); ok {
		return pp.PutPayload(u)
	}
	got, err := l.store.PutBlob(u.Data)
	if err == nil && !got.Equals(u.Payload) {
		err = fmt.Errorf("payload %s hashes to %s", u.Payload, got)
	}
	return err
}

// Tick advances the core's clock.
func (l *Loop) Tick(now time.Time) error {
	l.node.Tick(now)
	return l.flush(now)
}

// Done reports a job's result.
func (l *Loop) Done(now time.Time, r Result) error {
	l.node.Done(now, r)
	return l.flush(now)
}

// Fetched reports the outcome of a fetch.
func (l *Loop) Fetched(now time.Time, id cid.Cid, ok bool) error {
	l.node.Fetched(now, id, ok)
	return l.flush(now)
}

// Flush carries out whatever the core has ready (after New, say).
func (l *Loop) Flush(now time.Time) error { return l.flush(now) }

func (l *Loop) flush(now time.Time) error {
	for {
		r := l.node.Ready()
		if r.Empty() {
			return nil
		}
		for _, ev := range r.Events {
			l.effects.Event(ev)
		}
		if r.HeadChanged {
			if err := l.effects.Head(r.HeadStep, r.Head); err != nil {
				return fmt.Errorf("keeping the head C_%d: %w", r.HeadStep, err)
			}
		}
		for _, m := range r.Publish {
			l.effects.Publish(m)
		}
		for _, j := range r.Jobs {
			l.effects.Run(j)
		}
		for _, f := range r.Fetches {
			if l.holds(f) {
				l.node.Fetched(now, f.CID, true)
				continue
			}
			l.effects.Fetch(f)
		}
	}
}

// holds reports whether the store has what a fetch asks for.
func (l *Loop) holds(f Fetch) bool {
	if f.Kind == FetchCheckpoint {
		return l.store.HasCheckpoint(f.CID)
	}
	return l.store.HasBlob(f.CID)
}
