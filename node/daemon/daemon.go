// Package daemon runs the round protocol over the network: Node drives a
// node.Node (worker or observer) and Tracker a tracker.Tracker over a
// p2p.Host, with one goroutine owning each state machine and the work it
// asks for (training, fetching, publishing, disk) running as effects with
// bounded concurrency. Every goroutine has an owner and stops when Run
// returns.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/p2p"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// TopicName is the gossip topic of a round.
func TopicName(round cid.Cid) string { return "shoal/round/" + round.String() + "/v1" }

// InlineLimit is the largest update payload sent inside its gossip
// message; the rest of the message must fit too.
const InlineLimit = 1<<20 - 8<<10

// MaxPayload is the largest update payload a tracker fetches to hold it
// (payloads over content.MaxObject bytes travel as chunked blobs).
const MaxPayload = 4 << 30

// view is the snapshot of a state machine's position that gossip
// validators read from other goroutines. Nothing in it is changed once
// it is stored: a new position makes a new view, which shares the maps
// and deals of the old (they are replaced, never changed, by their
// owners).
type view struct {
	round    cid.Cid
	tracker  string
	group    []string // a tracker group's members (see wire.Grouped)
	step     uint64
	head     cid.Cid
	excluded map[string]bool
	sorted   []string // more excluded peers, sorted (a node's: the latest Open's list, shared)
	// deals are how the recent Opens the viewer holds dealt their unit
	// copies (a node's, from its core; a tracker's bus fills them in from
	// the Opens it publishes): the validator ignores an Update of any
	// other copy, or from a peer the copy was not dealt to.
	deals node.Deals
}

func (v *view) Round() cid.Cid          { return v.round }
func (v *view) TrackerID() string       { return v.tracker }
func (v *view) IsTracker(p string) bool { return p == v.tracker || slices.Contains(v.group, p) }
func (v *view) Head() (uint64, cid.Cid) { return v.step, v.head }
func (v *view) Excluded(peer string) bool {
	if v.excluded[peer] {
		return true
	}
	_, ok := slices.BinarySearch(v.sorted, peer)
	return ok
}
func (v *view) Dealt(step uint64, attempt uint32, unit uint32, replica uint8) string {
	return v.deals.Dealt(step, attempt, unit, replica)
}
func (v *view) clone() *view { c := *v; return &c }
func mapResult(r wire.Result) p2p.ValidationResult {
	switch r {
	case wire.Accept:
		return p2p.Accept
	case wire.Ignore:
		return p2p.Ignore
	}
	return p2p.Reject
}

// inbound is a message accepted by the validator, decoded.
type inbound struct {
	from string
	msg  wire.Msg
	size int
}

// bus is what both daemons share: the topic, its validator and the
// publisher goroutine.
type bus struct {
	host  *p2p.Host
	topic *p2p.Topic
	log   *slog.Logger
	self  string
	view  atomic.Pointer[view]
	// A tracker's bus deals the Opens it publishes itself (with the
	// round's spec), for its validator: the tracker's own view does not
	// carry deals.
	spec  *round.Spec
	dealt atomic.Pointer[node.Deals]
	seq   atomic.Uint64
	out   chan []byte
	in    chan inbound

	published, received atomic.Int64 // protocol bytes
	refused             atomic.Int64
}

// newBus joins the round's topic. A tracker's bus gets the round's spec,
// to deal the Opens it publishes for its validator; a node's, nil.
func newBus(h *p2p.Host, round cid.Cid, log *slog.Logger, v *view, spec *round.Spec) (*bus, error) {
	b := &bus{host: h, log: log, self: h.ID().String(), out: make(chan []byte, 1024), in: make(chan inbound, 1024), spec: spec}
	b.view.Store(v)
	b.seq.Store(uint64(time.Now().UnixNano()))
	t, err := h.Gossip().Join(TopicName(round), b.validate)
	if err != nil {
		return nil, err
	}
	b.topic = t
	return b, nil
}

// validate is the gossip validator: the envelope, then the protocol's pure
// Validate against the latest view. It runs on gossip's goroutines. What
// it accepts it hands to the reader decoded, as an inbound.
func (b *bus) validate(_ context.Context, from peer.ID, data []byte) (p2p.ValidationResult, any, error) {
	author, _, body, err := open(data)
	if err != nil {
		return p2p.Reject, nil, err
	}
	if author != from.String() {
		return p2p.Reject, nil, fmt.Errorf("envelope names %s as its author", author)
	}
	m, err := wire.Unmarshal(body)
	if err != nil {
		return p2p.Reject, nil, err
	}
	v := b.view.Load()
	if v.deals == nil && m.Kind() == wire.KindUpdate {
		if d := b.dealt.Load(); d != nil {
			c := *v
			c.deals = *d
			v = &c
		}
	}
	r, err := wire.Validate(v, author, m)
	if r != wire.Accept {
		return mapResult(r), nil, err
	}
	return p2p.Accept, inbound{from: author, msg: m, size: len(data)}, nil
}

// run reads the topic into b.in and publishes b.out until ctx ends.
func (b *bus) run(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			m, err := b.topic.Next(ctx)
			if err != nil {
				return
			}
			if m.From == b.host.ID() {
				continue
			}
			in, ok := m.Value.(inbound) // decoded by the validator
			if !ok {
				continue
			}
			b.received.Add(int64(in.size))
			select {
			case b.in <- in:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case data := <-b.out:
				pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := b.topic.Publish(pctx, data)
				cancel()
				if err != nil && ctx.Err() == nil {
					b.log.Warn("publish failed", "err", err)
				}
				b.published.Add(int64(len(data)))
			case <-ctx.Done():
				return
			}
		}
	}()
}

// publish queues a message; it never blocks the state machine's loop (a
// full queue drops the message, as a lossy network would, and says so).
func (b *bus) publish(m wire.Msg) {
	body, err := wire.Marshal(m)
	if err != nil {
		b.log.Error("refusing to publish a malformed message", "kind", m.Kind().String(), "err", err)
		return
	}
	if o, ok := m.(*wire.Open); ok && b.spec != nil {
		b.deal(o)
	}
	data := seal(b.self, b.seq.Add(1), body)
	select {
	case b.out <- data:
	default:
		b.log.Warn("publish queue full: message dropped", "kind", m.Kind().String())
	}
}

// deal keeps the deal of an Open the tracker publishes, with those of the
// few Opens before it, for the validator (before the Open leaves, so
// before any update of it can come back). A restarted tracker ignores
// updates until it republishes its Open, which it does at once; the
// workers, seeing its new epoch, send their updates again.
func (b *bus) deal(o *wire.Open) {
	var kept node.Deals
	if d := b.dealt.Load(); d != nil {
		kept = *d
	}
	for _, d := range kept {
		if s, a := d.Of(); s == o.Step && a == o.Attempt {
			return // republished
		}
	}
	deals := kept.With(node.NewDeal(b.spec, o))
	b.dealt.Store(&deals)
}

// headFile is where a node keeps the checkpoint it holds, so a restart
// resumes from it.
type headFile struct {
	Round      string `json:"round"`
	Step       uint64 `json:"step"`
	Checkpoint string `json:"checkpoint"`
}

func readHead(dir string, round cid.Cid) (uint64, cid.Cid, error) {
	b, err := os.ReadFile(filepath.Join(dir, "head.json"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, cid.Undef, nil
	}
	if err != nil {
		return 0, cid.Undef, err
	}
	var h headFile
	if err := json.Unmarshal(b, &h); err != nil {
		return 0, cid.Undef, fmt.Errorf("%s: %w", filepath.Join(dir, "head.json"), err)
	}
	if h.Round != round.String() {
		return 0, cid.Undef, fmt.Errorf("%s: the data directory belongs to round %s, not %s", dir, h.Round, round)
	}
	id, err := cid.Decode(h.Checkpoint)
	if err != nil {
		return 0, cid.Undef, fmt.Errorf("%s: %w", filepath.Join(dir, "head.json"), err)
	}
	return h.Step, id, nil
}

func writeHead(dir string, round cid.Cid, step uint64, id cid.Cid) error {
	b, _ := json.MarshalIndent(headFile{Round: round.String(), Step: step, Checkpoint: id.String()}, "", "  ")
	return checkpoint.WriteFileAtomic(filepath.Join(dir, "head.json"), 0o644, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// parsePeers turns peer ID strings into IDs, skipping malformed ones.
func parsePeers(ss []string) []peer.ID {
	out := make([]peer.ID, 0, len(ss))
	for _, s := range ss {
		if p, err := peer.Decode(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}
