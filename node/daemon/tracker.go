package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/p2p"
	"github.com/shoal-network/shoal/p2p/blob"
	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/dashboard"
	"github.com/shoal-network/shoal/tracker/group"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// TrackerConfig configures a Tracker daemon.
type TrackerConfig struct {
	Spec       *round.Spec
	Host       *p2p.Host // its peer ID must be the spec's first tracker
	Store      *Store    // serves the spec to peers
	Storage    tracker.Storage
	Genesis    cid.Cid
	MinMembers int
	Spares     float64 // tracker.Config.Spares
	Newcomers  float64 // tracker.Config.Newcomers
	Logger     *slog.Logger
	Tick       time.Duration // default 250 ms
	// Invite, Floor and Target are shown on the dashboard.
	Invite        string
	Floor, Target float64
	// EvalLoss, if set, reports the held-out loss an observer measured
	// for C_step, to plot beside the training loss.
	EvalLoss func(step uint64) (float64, bool)
	// EvalSample, if set, reports the observer's sample of text from
	// C_step, shown beside the loss curve.
	EvalSample func(step uint64) (string, bool)
	// History, if set, is a file where the dashboard's step timeline and
	// loss curve are kept, so a restarted tracker shows the whole round.
	History string
	// Anchors are the peers the operator vouches for (tracker.Config.Anchors):
	// the round's own observer, run beside the tracker.
	Anchors []string
	// FetchTimeout bounds the fetch of an update's payload from its
	// author, tries included (0: a quarter of the spec's deadline, at
	// most two minutes); Fetches bounds the fetches at once (0: 8).
	FetchTimeout time.Duration
	Fetches      int
	// Group configures this tracker's part in the round's tracker group,
	// when the spec names more than one tracker (see package
	// tracker/group); it is ignored otherwise.
	Group GroupConfig
	// AuditSecret, if set, is the tracker's audit secret
	// (tracker.Config.AuditSecret) instead of one derived from its key.
	// A group's members must share one, or have none.
	AuditSecret []byte
}

// history is what the History file holds.
type history struct {
	Steps []*dashboard.StepInfo `json:"steps"`
	Loss  []dashboard.LossPoint `json:"loss"`
	Eval  map[uint64]float64    `json:"eval,omitempty"`
}

// Tracker runs a round's tracker.
type Tracker struct {
	cfg   TrackerConfig
	round cid.Cid
	t     *tracker.Tracker
	bus   *bus
	log   *slog.Logger
	// rep is this tracker's replica of the round's tracker group (nil
	// for a round with one tracker); t is then its tracker.
	rep   *group.Replica
	group []string    // the group's peer IDs, canonical
	gs    groupStatus // what Group reports
	admin chan func() // configuration changes, run on the driver's goroutine

	mu      sync.Mutex
	started time.Time
	updates map[cid.Cid]*wire.Update // accepted updates of recent steps, by payload
	steps   []*dashboard.StepInfo
	loss    []dashboard.LossPoint
	events  []dashboard.Event
	peers   []dashboard.PeerInfo // sorted by ID
	phase   tracker.Phase
	step    uint64
	head    cid.Cid
	window  []sample // recent throughput samples
	// evalKept holds held-out losses from before a restart.
	evalKept map[uint64]float64

	// held carries the outcomes of payload fetches to the driver
	// goroutine; sem bounds the fetches at once.
	held    chan heldPayload
	sem     chan struct{}
	refetch []tracker.Fetch // asked for by the resumed tracker before Run
	owned   []ownedPayload  // payloads the driver stored, oldest first

	// What the gossip validator's view was made from (driver goroutine
	// only): it is made again when the head or the exclusions change,
	// and when the refused peers do, at the next dashboard refresh.
	viewStep           uint64
	viewHead           cid.Cid
	viewExcl, viewRefs uint64
	viewMade           bool
}

// refreshEvery is how often the dashboard's copy of the tracker's
// peers and ledger is made again.
const refreshEvery = time.Second

type sample struct {
	at      time.Time
	samples int64
	in, out int64
}

// NewTracker prepares a tracker daemon, resuming from cfg.Storage.
func NewTracker(cfg TrackerConfig) (*Tracker, error) {
	if cfg.Tick <= 0 {
		cfg.Tick = 250 * time.Millisecond
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = min(cfg.Spec.Deadline/4, 2*time.Minute)
	}
	if cfg.Fetches <= 0 {
		cfg.Fetches = 8
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Spec.Group() {
		return newGroupTracker(cfg)
	}
	id, err := round.CanonicalPeerID(cfg.Spec.Trackers[0])
	if err != nil {
		return nil, err
	}
	if id != cfg.Host.ID().String() {
		return nil, fmt.Errorf("this host is %s, but the round's tracker is %s: start the tracker with the identity the spec names", cfg.Host.ID(), id)
	}
	var admit func(string, []byte, time.Time) error
	if cfg.Spec.Admission == round.AdmissionClosed {
		key := cfg.Host.Libp2p().Peerstore().PrivKey(cfg.Host.ID())
		if key == nil {
			return nil, errors.New("the tracker's host has no private key to check access tokens with")
		}
		admit = Admitter(key.GetPublic(), cfg.Spec.ID())
	}
	// The audit secret: derived from the tracker's private key, so that
	// a restarted tracker reveals the same key for the same Close.
	auditSecret := cfg.AuditSecret
	if key := cfg.Host.Libp2p().Peerstore().PrivKey(cfg.Host.ID()); key != nil && auditSecret == nil {
		raw, err := key.Raw()
		if err != nil {
			return nil, fmt.Errorf("tracker: reading its private key: %w", err)
		}
		sum := sha256.Sum256(append([]byte("shoal tracker audit secret\x00"), raw...))
		auditSecret = sum[:]
	}
	if cfg.Storage == nil {
		cfg.Storage = &tracker.MemStorage{}
	}
	st, err := cfg.Storage.Load()
	if err != nil {
		return nil, fmt.Errorf("tracker: loading state: %w", err)
	}
	if st != nil {
		// The store keeps payloads in memory: after a restart none is
		// held, and the open step's are fetched again.
		st.Held = nil
	}
	t, err := tracker.New(tracker.Config{Spec: cfg.Spec, Genesis: cfg.Genesis, MinMembers: cfg.MinMembers, Spares: cfg.Spares, Newcomers: cfg.Newcomers, Anchors: cfg.Anchors, Admit: admit,
		AuditSecret: auditSecret}, st, time.Now())
	if err != nil {
		return nil, err
	}
	// The new tracker (or the resumed one's new epoch) is durable before
	// it does anything. A resumed one asks again for the payloads of the
	// open step it does not know held: Run fetches them.
	rd := t.Ready()
	if rd.State != nil {
		if err := cfg.Storage.Save(rd.State); err != nil {
			return nil, fmt.Errorf("tracker: saving state: %w", err)
		}
	}
	round := cfg.Spec.ID()
	if err := cfg.Store.Put(round, cfg.Spec.Canonical()); err != nil {
		return nil, err
	}
	d := &Tracker{cfg: cfg, round: round, t: t, log: cfg.Logger, started: time.Now().UTC(), updates: map[cid.Cid]*wire.Update{},
		held: make(chan heldPayload), sem: make(chan struct{}, cfg.Fetches), refetch: rd.Fetch}
	if cfg.History != "" {
		if b, err := os.ReadFile(cfg.History); err == nil {
			var h history
			if err := json.Unmarshal(b, &h); err != nil {
				d.log.Warn("the dashboard history is unreadable; starting a new one", "path", cfg.History, "err", err)
			} else {
				d.steps, d.loss, d.evalKept = h.Steps, h.Loss, h.Eval
			}
		}
	}
	d.refresh()
	return d, nil
}

// saveHistory writes the dashboard's history (best effort: it is for
// people, not for the protocol).
func (d *Tracker) saveHistory() {
	if d.cfg.History == "" {
		return
	}
	h := history{Steps: d.steps, Loss: d.loss, Eval: map[uint64]float64{}}
	for k, v := range d.evalKept {
		h.Eval[k] = v
	}
	if d.cfg.EvalLoss != nil {
		if l, ok := d.cfg.EvalLoss(0); ok {
			h.Eval[0] = l
		}
		for _, p := range d.loss {
			if l, ok := d.cfg.EvalLoss(p.Step + 1); ok {
				h.Eval[p.Step+1] = l
			}
		}
	}
	b, err := json.Marshal(h)
	if err == nil {
		err = checkpoint.WriteFileAtomic(d.cfg.History, 0o644, func(w io.Writer) error { _, err := w.Write(b); return err })
	}
	if err != nil {
		d.log.Warn("cannot save the dashboard history", "err", err)
	}
}

// Run drives the tracker until ctx ends. A failure to save its state
// stops it with the error: what it decided would not be durable.
func (d *Tracker) Run(ctx context.Context) error {
	if d.rep != nil {
		return d.runGroup(ctx)
	}
	s, h := d.t.Head()
	b, err := newBus(d.cfg.Host, d.round, d.log, &view{round: d.round, tracker: d.t.TrackerID(), group: d.group, step: s, head: h, excluded: map[string]bool{}}, d.cfg.Spec)
	if err != nil {
		return err
	}
	d.bus = b
	defer b.topic.Close()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	b.run(ctx, &wg)
	fetch := func(f tracker.Fetch) { d.fetch(ctx, &wg, f) }
	tick := time.NewTicker(d.cfg.Tick)
	defer tick.Stop()
	// The dashboard's copy of the peers and ledger costs time in the
	// number of peers: it is made on a timer, not after every message.
	dash := time.NewTicker(refreshEvery)
	defer dash.Stop()
	d.log.Info("tracker running", "round", d.round.String(), "step", s, "head", h.String())
	for {
		select {
		case <-ctx.Done():
			d.log.Info("tracker stopping")
			d.refresh()
			return nil
		case m := <-b.in:
			if err := d.t.Receive(time.Now(), m.from, m.msg); err != nil {
				b.refused.Add(1)
				d.log.Debug("message refused", "peer", m.from, "kind", m.msg.Kind().String(), "reason", err.Error())
				d.note(dashboard.Event{At: time.Now().UTC(), Kind: string(wire.EventRefused), Step: m.msg.StepNum(), Peer: m.from,
					Detail: fmt.Sprintf("%s: %v", m.msg.Kind(), err)})
			} else if u, ok := m.msg.(*wire.Update); ok {
				d.keepInline(u)
				d.mu.Lock()
				meta := *u
				meta.Data = nil
				d.updates[u.Payload] = &meta
				d.mu.Unlock()
			}
		case h := <-d.held:
			d.own(h.id)
			d.t.Held(time.Now(), h.id, h.err == nil)
			if h.err != nil {
				d.log.Info("payload not held", "payload", h.id.String(), "author", h.from, "err", h.err.Error())
			}
		case <-tick.C:
			// The time now, not the ticker's: the tracker's clock must
			// not go back behind the messages just received.
			if err := d.t.Tick(time.Now()); err != nil {
				return fmt.Errorf("tracker: %w", err)
			}
		case <-dash.C:
			d.refresh()
			d.updateView(true)
		}
		if err := d.flush(fetch); err != nil {
			return err
		}
	}
}

// flush is the driver's contract with the state machine: persist the
// state of a Ready, then publish its messages, and fetch the payloads it
// asks for. A failed save stops the tracker before anything it decided
// is announced.
func (d *Tracker) flush(fetch func(tracker.Fetch)) error {
	rd := d.t.Ready()
	rd.Fetch, d.refetch = append(d.refetch, rd.Fetch...), nil
	// A payload the store holds already (inline data, or named by an
	// earlier update) is held at once; its Held may decide more.
	for len(rd.Fetch) > 0 {
		held := false
		for _, f := range rd.Fetch {
			if d.cfg.Store.HasBlob(f.Payload) {
				d.t.Held(time.Now(), f.Payload, true)
				held = true
			} else {
				fetch(f)
			}
		}
		if !held {
			break
		}
		more := d.t.Ready()
		if more.State != nil {
			rd.State = more.State
		}
		rd.Publish = append(rd.Publish, more.Publish...)
		rd.Events = append(rd.Events, more.Events...)
		rd.Fetch = more.Fetch
	}
	if rd.State != nil {
		if err := d.cfg.Storage.Save(rd.State); err != nil {
			return fmt.Errorf("tracker: saving state: %w", err)
		}
	}
	d.emit(rd.Events, rd.Publish)
	return nil
}

// emit logs the tracker's events and publishes its messages, once what
// they announce is durable.
func (d *Tracker) emit(events []tracker.Event, publish []wire.Msg) {
	for _, ev := range events {
		lvl := slog.LevelInfo
		switch ev.Kind {
		case wire.EventExclude, wire.EventMismatch, wire.EventDispute:
			lvl = slog.LevelWarn
		}
		d.log.Log(context.Background(), lvl, string(ev.Kind), "step", ev.Step, "peer", ev.Peer, "detail", ev.Detail)
		d.note(dashboard.Event{At: time.Now().UTC(), Kind: string(ev.Kind), Step: ev.Step, Peer: ev.Peer, Detail: ev.Detail})
	}
	final := false
	for _, m := range publish {
		d.record(m)
		d.bus.publish(m)
		_, ok := m.(*wire.Final)
		final = final || ok
	}
	for _, m := range publish {
		if f, ok := m.(*wire.Final); ok {
			d.forgetOld(f.Step)
		}
	}
	d.updateView(false)
	if final {
		d.refresh() // a step's end: the dashboard shows its ledger at once
	} else {
		d.refreshHead()
	}
}

// updateView gives the gossip validator the tracker's head and the peers
// without standing (caught lying, or refused by a closed round), whose
// messages it ignores before any work. Making it costs time in the
// number of such peers, so it is made again only when the head or the
// exclusions changed or, with refused, when the refused peers did (a
// stream of refused Hellos then costs a copy a second, not one each).
func (d *Tracker) updateView(refused bool) {
	s, h := d.t.Head()
	excl, refs := d.t.StandingChanges()
	if d.viewMade && s == d.viewStep && h.Equals(d.viewHead) && excl == d.viewExcl && (!refused || refs == d.viewRefs) {
		return
	}
	excluded := map[string]bool{}
	for p, e := range d.t.Ledger() {
		if e.Excluded {
			excluded[p] = true
		}
	}
	for p := range d.t.Refused() {
		excluded[p] = true
	}
	d.bus.view.Store(&view{round: d.round, tracker: d.t.TrackerID(), group: d.group, step: s, head: h, excluded: excluded})
	d.viewStep, d.viewHead, d.viewExcl, d.viewRefs, d.viewMade = s, h, excl, refs, true
}

func (d *Tracker) note(ev dashboard.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events = append(d.events, ev)
	if len(d.events) > 100 {
		d.events = d.events[len(d.events)-100:]
	}
}

// record keeps the step timeline from what the tracker publishes.
func (d *Tracker) record(m wire.Msg) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now().UTC()
	last := func(step uint64) *dashboard.StepInfo {
		if n := len(d.steps); n > 0 && d.steps[n-1].Step == step {
			return d.steps[n-1]
		}
		return nil
	}
	switch m := m.(type) {
	case *wire.Open:
		si := last(m.Step)
		if si == nil {
			si = &dashboard.StepInfo{Step: m.Step}
			d.steps = append(d.steps, si)
			if len(d.steps) > 200 {
				d.steps = d.steps[len(d.steps)-200:]
			}
		}
		if si.Closed.IsZero() {
			si.Opened, si.Members = now, len(m.Members)
		}
	case *wire.Close:
		si := last(m.Step)
		if si == nil || !si.Closed.IsZero() {
			return
		}
		si.Closed, si.Included = now, len(m.Included)
		var loss float64
		var n int
		for _, in := range m.Included {
			si.Samples += int64(in.Weight)
			if u := d.updates[in.Payload]; u != nil {
				si.Bytes += int64(u.Size)
				loss += float64(u.Loss)
				n++
			}
		}
		if n > 0 {
			d.loss = append(d.loss, dashboard.LossPoint{Step: m.Step, Train: loss / float64(n)})
		}
		for p, u := range d.updates {
			if u.Step+2 < m.Step {
				delete(d.updates, p)
			}
		}
	case *wire.Final:
		si := last(m.Step)
		if si == nil || !si.Finalised.IsZero() {
			return
		}
		si.Finalised, si.Checkpoint = now, m.Checkpoint.String()
		d.window = append(d.window, sample{at: now, samples: si.Samples, in: d.bus.received.Load(), out: d.bus.published.Load()})
		if len(d.window) > 20 {
			d.window = d.window[1:]
		}
		d.saveHistory()
	}
}

// refresh copies the state machine's facts for Snapshot, which runs on
// other goroutines: the peers as the dashboard lists them, sorted, made
// here on the driver's goroutine and not under the lock Snapshot takes.
func (d *Tracker) refresh() {
	peers := dashboardPeers(d.t.Peers(time.Now()), d.t.Ledger())
	d.mu.Lock()
	d.peers = peers
	d.mu.Unlock()
	d.refreshHead()
}

// refreshHead copies the step, its phase and the head for Snapshot (after
// every message: it costs nothing).
func (d *Tracker) refreshHead() {
	step, phase := d.t.Step()
	_, head := d.t.Head()
	d.mu.Lock()
	d.step, d.phase, d.head = step, phase, head
	d.mu.Unlock()
}

// dashboardPeers lists the peers for the dashboard: those the tracker
// knows, then those only the ledger remembers, sorted by ID.
func dashboardPeers(known []tracker.PeerState, ledger map[string]tracker.Entry) []dashboard.PeerInfo {
	out := make([]dashboard.PeerInfo, 0, len(known))
	seen := make(map[string]bool, len(known))
	for _, p := range known {
		e := ledger[p.ID]
		state, reason := "gone", e.Reason
		switch {
		case e.Excluded:
			state = "excluded"
		case p.Refused != "":
			state, reason = "refused", p.Refused
		case p.Live:
			state = "live"
		}
		seen[p.ID] = true
		info := dashboard.PeerInfo{ID: p.ID, Role: p.Role.String(), State: state, HeadStep: p.Step,
			Units: e.Units, Samples: e.Samples, Verified: e.Verified, Checks: e.Checks,
			Mismatches: e.Mismatches, Reason: reason}
		if !p.LastSeen.IsZero() {
			info.LastSeen = p.LastSeen.UTC()
		}
		out = append(out, info)
	}
	for id, e := range ledger {
		if seen[id] {
			continue
		}
		state := "gone"
		if e.Excluded {
			state = "excluded"
		}
		out = append(out, dashboard.PeerInfo{ID: id, Role: "worker", State: state, Units: e.Units,
			Samples: e.Samples, Verified: e.Verified, Checks: e.Checks, Mismatches: e.Mismatches, Reason: e.Reason})
	}
	if len(out) == 0 {
		return nil
	}
	slices.SortFunc(out, func(a, b dashboard.PeerInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Finals returns the finalised steps.
func (d *Tracker) Finals() []*wire.Final { return d.t.Finals() }

// Snapshot returns the dashboard's view of the round. It is safe to call
// from any goroutine.
func (d *Tracker) Snapshot() dashboard.Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.cfg.Spec
	m := s.Model
	model := fmt.Sprintf("%s %d layers × %d wide, context %d", m.Arch, m.Layers, m.Dim, m.Ctx)
	snap := dashboard.Snapshot{
		Round: d.round.String(), Name: s.Name, Model: model, Codec: s.Codec, Rule: s.Aggregation,
		Invite: d.cfg.Invite, Now: time.Now().UTC(), Started: d.started, Step: d.step, Phase: d.phase.String(),
		Head: d.head.String(), Floor: d.cfg.Floor, Target: d.cfg.Target,
	}
	if l, ok := d.evalKept[0]; ok {
		snap.StartEval = l
	}
	if d.cfg.EvalLoss != nil {
		if l, ok := d.cfg.EvalLoss(0); ok {
			snap.StartEval = l
		}
	}
	for _, p := range d.loss {
		if l, ok := d.evalKept[p.Step+1]; ok {
			p.Eval = l
		}
		if d.cfg.EvalLoss != nil {
			if l, ok := d.cfg.EvalLoss(p.Step + 1); ok {
				p.Eval = l
			}
		}
		if d.cfg.EvalSample != nil {
			if text, ok := d.cfg.EvalSample(p.Step + 1); ok {
				p.Sample = text
			}
		}
		snap.Loss = append(snap.Loss, p)
	}
	for _, si := range d.steps {
		snap.Steps = append(snap.Steps, *si)
	}
	snap.Peers = slices.Clone(d.peers)
	if n := len(d.window); n >= 2 {
		a, b := d.window[0], d.window[n-1]
		if dt := b.at.Sub(a.at).Seconds(); dt > 0 {
			var samples int64
			for _, w := range d.window[1:] {
				samples += w.samples
			}
			snap.Throughput = dashboard.Throughput{SamplesPerSec: float64(samples) / dt,
				BytesInPerSec: float64(b.in-a.in) / dt, BytesOutPerSec: float64(b.out-a.out) / dt,
				StepSeconds: dt / float64(n-1)}
		}
	}
	snap.Events = append(snap.Events, d.events...)
	if d.rep != nil {
		g := d.Group()
		snap.Group = &dashboard.GroupInfo{Self: g.Self, Members: g.Members, Leader: g.Leader, Term: g.Term, Commit: g.Commit,
			Applied: g.Applied, Lag: g.Lag, Snapshot: g.Snapshot, LogLen: g.LogLen, Leads: g.Leads}
	}
	return snap
}

// heldPayload is the outcome of a payload fetch.
type heldPayload struct {
	id   cid.Cid
	from string
	err  error
}

// keepInline stores the inline payload of an update the tracker
// accepted, once it is checked against the update's Payload and Size:
// the fetch the tracker asks for then finds it held.
func (d *Tracker) keepInline(u *wire.Update) {
	if len(u.Data) == 0 || d.cfg.Store.HasBlob(u.Payload) {
		return
	}
	err := content.Verify(u.Payload, u.Data)
	if err == nil && uint64(len(u.Data)) != u.Size {
		err = fmt.Errorf("%d bytes, the update says %d", len(u.Data), u.Size)
	}
	if err == nil {
		err = d.cfg.Store.Put(u.Payload, u.Data)
	}
	if err == nil {
		d.own(u.Payload)
	}
	if err != nil {
		d.log.Info("inline payload not kept", "payload", u.Payload.String(), "err", err.Error())
	}
}

// fetch fetches an update's payload from its author into the store, as
// the tracker asks (see tracker.Fetch), at most cfg.Fetches at once and
// within cfg.FetchTimeout, and reports the outcome to the driver
// goroutine: held only if it is Size bytes that hash to the CID (the
// exchange checks the hash, the store its bound).
func (d *Tracker) fetch(ctx context.Context, wg *sync.WaitGroup, f tracker.Fetch) {
	if f.Size == 0 || f.Size > MaxPayload {
		d.t.Held(time.Now(), f.Payload, false)
		d.log.Info("payload not held", "payload", f.Payload.String(), "author", f.Provider,
			"err", fmt.Sprintf("%d bytes: not a payload this version fetches (1 to %d bytes)", f.Size, MaxPayload))
		return
	}
	provs := parsePeers([]string{f.Provider})
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !acquire(ctx, d.sem) {
			return
		}
		err := fetchPayload(ctx, d.cfg.FetchTimeout, d.sem, d.cfg.Store, d.cfg.Host.Blobs(), f, provs)
		select {
		case d.held <- heldPayload{id: f.Payload, from: f.Provider, err: err}:
		case <-ctx.Done():
		}
	}()
}

// fetchPayload fetches a payload from its providers within timeout of
// its first try, trying again a little later (an author's link may be
// busy), and checks its size. It is called holding a place of sem and
// returns with it given back; it gives it back while it waits between
// tries too, so that an author who serves nothing holds a place only
// for its tries, not for the whole timeout, and the payloads of the
// others are not held up behind it.
func fetchPayload(ctx context.Context, timeout time.Duration, sem chan struct{}, st *Store, x *blob.Exchange, f tracker.Fetch, provs []peer.ID) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wait := time.Second
	for {
		n, err := st.FetchBlob(ctx, x, f.Payload, int64(f.Size), provs)
		<-sem
		if err == nil {
			if uint64(n) != f.Size {
				st.Forget(f.Payload)
				return fmt.Errorf("payload %s: %d bytes, the update says %d", f.Payload, n, f.Size)
			}
			return nil
		}
		select {
		case <-time.After(wait):
			wait *= 2
		case <-ctx.Done():
			return err
		}
		if !acquire(ctx, sem) {
			return err
		}
	}
}

// acquire takes a place of sem, unless ctx ends first.
func acquire(ctx context.Context, sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// own records that the driver stored payload id for the current step,
// so that it is forgotten Retention steps later.
func (d *Tracker) own(id cid.Cid) {
	step, _ := d.t.Step()
	d.owned = append(d.owned, ownedPayload{id: id, step: step})
}

// forgetOld drops the payloads the driver stored for steps older than
// the last node.Retention before the step just finalised: the tracker
// serves the payloads of recent Closes, and its store stays bounded.
// Only payloads it fetched or took inline go, never content that was in
// the store before (the spec, a dataset's shards).
func (d *Tracker) forgetOld(final uint64) {
	n := 0
	for _, o := range d.owned {
		if o.step+node.Retention > final {
			break
		}
		d.cfg.Store.Forget(o.id)
		n++
	}
	d.owned = slices.Delete(d.owned, 0, n)
}

type ownedPayload struct {
	id   cid.Cid
	step uint64
}
