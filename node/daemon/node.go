package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/p2p"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// NodeConfig configures a Node daemon.
type NodeConfig struct {
	Spec    *round.Spec
	Role    wire.Role
	DataDir string    // holds head.json; the Store's checkpoints live here too
	Host    *p2p.Host // started, with Store as its blob store
	Store   *Store
	Engine  node.Engine // computes the jobs; its Genesis must be in Store
	Logger  *slog.Logger
	// Tick is the period of the state machine's clock (default 500 ms).
	Tick time.Duration
	// Evaluate, if set, measures the held-out loss of each new head (an
	// observer's duty); it runs on the job goroutine between jobs.
	Evaluate func(step uint64, head cid.Cid) (float64, error)
	// Fetches bounds the fetches running at once (default 4).
	Fetches int
	// KeepCheckpoints is how many recent checkpoints stay on disk
	// (default node.Retention); older ones are collected.
	KeepCheckpoints int
	// Token is the access token of a closed round (see ParseToken).
	Token []byte
	// Dataset, for a round on a dataset, lists its shards: before a job
	// on a unit runs, the node fetches the unit's shard (verified by CID)
	// from the peers that have it and keeps it on disk.
	Dataset *data.DatasetManifest
	// DataPeers are asked for shards first (the tracker, the invite's
	// peers); any peer of the round is asked after them.
	DataPeers []peer.ID
}

// Node runs a worker or an observer.
type Node struct {
	cfg    NodeConfig
	round  cid.Cid
	core   *node.Node
	group  []string   // the round's trackers, canonical (a group of them, or one)
	loop   *node.Loop // drives core; the Node is its Effects
	bus    *bus
	log    *slog.Logger
	status *statusBox

	jobs       chan node.Job
	results    chan node.Result
	fetched    chan fetchResult
	evals      chan evalResult
	pending    []node.Job
	busy       bool
	shards     map[cid.Cid]bool // shards being fetched
	shardCh    chan fetchResult
	shardRetry time.Time
	wg         *sync.WaitGroup
	ctx        context.Context
	evalDue    cid.Cid
	evalAt     uint64
	sem        chan struct{}

	// A full disk (or the disk cap reached with nothing to evict) holds
	// back the reports of the jobs and fetches it failed, so the core does
	// not retry at once: they are delivered when diskRetry fires, after a
	// backoff that doubles with every failure up to maxDiskBackoff and
	// resets on the first success. The worker takes no job meanwhile.
	diskHeld    []func() error
	diskRetry   <-chan time.Time
	diskBackoff time.Duration
	diskFull    bool
}

// Backoff bounds after a write fails for want of disk.
const (
	minDiskBackoff = time.Second
	maxDiskBackoff = 2 * time.Minute
)

type fetchResult struct {
	id   cid.Cid
	kind node.FetchKind
	ok   bool
	err  error
}

type evalResult struct {
	step uint64
	id   cid.Cid
	loss float64
	err  error
}

// NewNode prepares a node daemon, resuming from the head in DataDir.
func NewNode(cfg NodeConfig) (*Node, error) {
	if cfg.Tick <= 0 {
		cfg.Tick = 500 * time.Millisecond
	}
	if cfg.Fetches <= 0 {
		cfg.Fetches = 4
	}
	if cfg.KeepCheckpoints <= 0 {
		cfg.KeepCheckpoints = node.Retention
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	round := cfg.Spec.ID()
	cfg.Engine = faulty(cfg.Engine)
	genesis, err := cfg.Engine.Genesis()
	if err != nil {
		return nil, fmt.Errorf("genesis checkpoint: %w", err)
	}
	step, head, err := readHead(cfg.DataDir, round)
	if err != nil {
		return nil, err
	}
	if head.Defined() && !cfg.Store.HasCheckpoint(head) {
		cfg.Logger.Warn("the head in the data directory is gone from the store; starting from the genesis", "head", head.String())
		step, head = 0, cid.Undef
	}
	core, err := node.New(node.Config{ID: cfg.Host.ID().String(), Role: cfg.Role, Spec: cfg.Spec, Genesis: genesis,
		HeadStep: step, Head: head, InlineLimit: InlineLimit, Token: cfg.Token,
		GenesisMissing: !cfg.Store.HasCheckpoint(genesis)})
	if err != nil {
		return nil, err
	}
	// Serve the spec, so peers that know only the round ID can join.
	if err := cfg.Store.Put(round, cfg.Spec.Canonical()); err != nil {
		return nil, err
	}
	d := &Node{cfg: cfg, round: round, core: core, log: cfg.Logger, status: newStatusBox(), group: cfg.Spec.TrackerIDs(),
		jobs: make(chan node.Job), results: make(chan node.Result, 1), fetched: make(chan fetchResult, 64),
		evals: make(chan evalResult, 1), sem: make(chan struct{}, cfg.Fetches),
		shards: map[cid.Cid]bool{}, shardCh: make(chan fetchResult, 8)}
	d.loop = node.NewLoop(core, cfg.Store, (*effects)(d))
	if cfg.Evaluate != nil && !head.Defined() && cfg.Spec.Adapter != nil {
		// An adapter's genesis computes what its base does: its loss is
		// the one the round starts from (as a fine-tuning round's
		// fetched genesis is measured when it arrives).
		d.evalDue, d.evalAt = genesis, 0
	}
	s, h := core.Head()
	d.status.update(func(st *Status) {
		st.Role, st.Peer, st.Round, st.Step, st.Head = cfg.Role.String(), cfg.Host.ID().String(), round.String(), s, h.String()
	})
	return d, nil
}

// Status returns the node's current status.
func (d *Node) Status() Status { return d.status.get() }

// Core returns the state machine, for tests; use it only while Run is not
// running.
func (d *Node) Core() *node.Node { return d.core }

func (d *Node) makeView() *view {
	s, h := d.core.Head()
	// The peers the tracker excluded are ignored by the validator, so
	// their messages are neither delivered nor relayed; so are updates of
	// unit copies not dealt to their senders. The set and the deals are
	// shared with the core, which replaces them (never changes them).
	return &view{round: d.round, tracker: d.core.TrackerID(), group: d.group, step: s, head: h, sorted: d.core.ExcludedPeers(), deals: d.core.Deals()}
}

// Run drives the node until ctx ends, then stops at a safe point: the
// running job finishes (its result is dropped), fetches are cancelled, and
// the head on disk is the last one the node held.
func (d *Node) Run(ctx context.Context) error {
	b, err := newBus(d.cfg.Host, d.round, d.log, d.makeView(), nil)
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
	d.wg, d.ctx = &wg, ctx
	wg.Add(1)
	go d.worker(ctx, &wg)

	tick := time.NewTicker(d.cfg.Tick)
	defer tick.Stop()
	d.log.Info("node running", "as", d.cfg.Role.String(), "peer", d.cfg.Host.ID().String(), "round", d.round.String())
	if err := d.loop.Tick(time.Now()); err != nil {
		return err
	}
	d.settle()
	for {
		var err error
		select {
		case <-ctx.Done():
			d.log.Info("node stopping")
			return nil
		case m := <-b.in:
			var refused error
			refused, err = d.loop.Receive(time.Now(), m.from, m.msg)
			if refused != nil {
				b.refused.Add(1)
				d.log.Debug("message refused", "peer", m.from, "kind", m.msg.Kind().String(), "reason", refused.Error())
			}
		case now := <-tick.C:
			err = d.loop.Tick(now)
		case r := <-d.results:
			if IsDiskFull(r.Err) {
				d.holdForDisk(r.Err, func() error { d.busy = false; return d.loop.Done(time.Now(), r) })
				break
			}
			d.busy = false
			if _, ok := r.Job.(node.ApplyJob); ok {
				d.diskRoom(r.Err == nil) // it wrote a checkpoint
			}
			err = d.loop.Done(time.Now(), r)
			d.noteResult(r)
		case f := <-d.fetched:
			if IsDiskFull(f.err) {
				d.holdForDisk(f.err, func() error { return d.loop.Fetched(time.Now(), f.id, f.ok) })
				break
			}
			if f.err != nil {
				d.log.Info("fetch failed", "cid", f.id.String(), "err", f.err.Error())
			}
			if f.kind == node.FetchCheckpoint {
				d.diskRoom(f.ok)
			}
			err = d.loop.Fetched(time.Now(), f.id, f.ok)
		case <-d.diskRetry:
			d.diskRetry = nil
			held := d.diskHeld
			d.diskHeld = nil
			for _, deliver := range held {
				if err = deliver(); err != nil {
					break
				}
			}
		case f := <-d.shardCh:
			delete(d.shards, f.id)
			if f.err != nil {
				d.log.Warn("fetching a dataset shard failed; will retry", "shard", f.id.String(), "err", f.err.Error())
				d.shardRetry = time.Now().Add(2 * time.Second)
			} else if err := d.cfg.Store.Keep(f.id); err != nil {
				d.log.Warn("cannot keep a dataset shard on disk", "shard", f.id.String(), "err", err.Error())
			} else {
				d.status.event(node.Event{Kind: wire.EventShard, Detail: "fetched dataset shard " + f.id.String()})
			}
		case e := <-d.evals:
			d.busy = false
			if e.err != nil {
				d.log.Warn("evaluation failed", "step", e.step, "err", e.err.Error())
			} else {
				d.status.update(func(st *Status) { st.EvalLoss, st.EvalStep = e.loss, e.step })
				d.log.Info("evaluated", "step", e.step, "loss", e.loss)
			}
		}
		if err != nil {
			return err
		}
		d.settle()
	}
}

// holdForDisk keeps the report of a job or fetch that failed for want of
// disk until the backoff ends. The first failure is logged and shown on
// the status page; the rest are not, until the disk has room again.
func (d *Node) holdForDisk(cause error, deliver func() error) {
	d.diskHeld = append(d.diskHeld, deliver)
	if d.diskRetry != nil {
		return // a retry is due already: this one waits for it
	}
	if d.diskBackoff == 0 {
		d.diskBackoff = minDiskBackoff
	} else {
		d.diskBackoff = min(2*d.diskBackoff, maxDiskBackoff)
	}
	d.diskRetry = time.After(d.diskBackoff)
	d.sayDiskFull(cause)
}

// sayDiskFull logs a full disk and shows it on the status page, once
// until the disk has room again.
func (d *Node) sayDiskFull(cause error) {
	if d.diskFull {
		return
	}
	d.diskFull = true
	d.log.Warn("disk full: pausing work and retrying with a backoff (free disk space or raise --max-disk)", "err", cause.Error(), "retry_in", d.diskBackoff.String())
	d.status.update(func(st *Status) { st.DiskFull = cause.Error() })
}

// diskRoom ends a disk-full backoff once a checkpoint is written or
// fetched.
func (d *Node) diskRoom(ok bool) {
	if !ok || !d.diskFull {
		return
	}
	d.diskFull, d.diskBackoff = false, 0
	d.log.Info("disk has room again: work resumes")
	d.status.update(func(st *Status) { st.DiskFull = "" })
}

func (d *Node) noteResult(r node.Result) {
	if r.Err != nil {
		return
	}
	switch j := r.Job.(type) {
	case node.TrainJob:
		d.status.update(func(st *Status) {
			st.Units++
			st.Samples += int64(r.Update.Samples)
			st.TrainLoss = float64(r.Update.Loss)
			st.LastUnit = fmt.Sprintf("step %d unit %d", j.Step, j.Unit)
		})
	}
}

// settle brings what the loop's effects changed to the gossip
// validator's view, the job worker and the status.
func (d *Node) settle() {
	d.bus.view.Store(d.makeView())
	d.dispatch(d.ctx)
	d.status.update(func(st *Status) {
		st.Peers = len(d.bus.topic.Peers())
		st.BytesIn, st.BytesOut = d.bus.received.Load(), d.bus.published.Load()
		st.BlobOut, st.BlobIn = d.cfg.Host.Blobs().Stats()
		gs := d.cfg.Host.Gossip().Stats()
		st.GossipIn, st.GossipOut = gs.WireIn, gs.WireOut
		st.Refused = d.bus.refused.Load()
		st.Disk = d.cfg.Store.DiskBytes()
		st.Verified = d.core.Credit()
	})
}

// effects is the Node as its loop's Effects: how each effect is carried
// out with goroutines and real time.
type effects Node

// Event logs an event and shows it on the status page. Every step brings
// train, update, commit and final events: those are for debugging; what
// a volunteer should see is the rest.
func (d *effects) Event(ev node.Event) {
	lvl := slog.LevelDebug
	switch ev.Kind {
	case wire.EventError, wire.EventMismatch, wire.EventExcluded:
		if !d.diskFull { // a full disk is said once, not at every retry
			lvl = slog.LevelWarn
		}
	case wire.EventCatchUp, wire.EventVerdict:
		lvl = slog.LevelInfo
	}
	d.log.Log(d.ctx, lvl, string(ev.Kind), "step", ev.Step, "detail", ev.Detail)
	d.status.event(ev)
}

// Head persists the node's head and, for an observer, queues its
// evaluation.
func (d *effects) Head(step uint64, id cid.Cid) error {
	if err := (*Node)(d).persistHead(step, id); err != nil {
		if !IsDiskFull(err) {
			return err
		}
		// The head stays in memory and is written at its next change;
		// a restart meanwhile resumes from the one before.
		(*Node)(d).sayDiskFull(err)
	}
	if d.cfg.Evaluate != nil {
		d.evalDue, d.evalAt = id, step
	}
	return nil
}

// Publish queues a message for gossip.
func (d *effects) Publish(m wire.Msg) { d.bus.publish(m) }

// Run queues a job for the worker.
func (d *effects) Run(j node.Job) { d.pending = append(d.pending, j) }

func (d *Node) persistHead(step uint64, id cid.Cid) error {
	if err := writeHead(d.cfg.DataDir, d.round, step, id); err != nil {
		return err
	}
	ck := d.cfg.Store.Checkpoints()
	if err := ck.SetLabel("head", id); err != nil {
		return err
	}
	if step%uint64(d.cfg.KeepCheckpoints) == 0 {
		if _, err := ck.GC(d.cfg.KeepCheckpoints); err != nil {
			d.log.Warn("checkpoint collection failed", "err", err)
		}
	}
	d.cfg.Store.Sweep(node.Retention)
	d.status.update(func(st *Status) { st.Step, st.Head = step, id.String() })
	return nil
}

// dispatch hands the next job to the worker when it is idle; an
// evaluation waits for a gap between jobs.
func (d *Node) dispatch(ctx context.Context) {
	if d.busy {
		return
	}
	var j node.Job
	switch {
	case len(d.pending) > 0:
		if !d.haveData(d.pending[0]) {
			return // fetching the unit's shard; dispatch resumes when it is here
		}
		j = d.pending[0]
		d.pending = d.pending[1:]
	case d.evalDue.Defined():
		j = evalJob{step: d.evalAt, id: d.evalDue}
		d.evalDue = cid.Undef
	default:
		return
	}
	select {
	case d.jobs <- j:
		d.busy = true
	case <-ctx.Done():
	}
}

// haveData reports whether a job's data is at hand, and starts fetching
// it if not.
func (d *Node) haveData(j node.Job) bool {
	ds := d.cfg.Dataset
	if ds == nil {
		return true
	}
	var unit uint32
	var step uint64
	switch j := j.(type) {
	case node.TrainJob:
		step, unit = j.Step, j.Unit
	case node.VerifyJob:
		step, unit = j.Step, j.Unit
	default:
		return true
	}
	id := ds.ShardFor(step, unit, d.cfg.Spec.UnitsPerStep()).CID
	if d.cfg.Store.Has(id) {
		return true
	}
	if d.shards[id] || time.Now().Before(d.shardRetry) {
		return false
	}
	d.shards[id] = true
	provs := append([]peer.ID(nil), d.cfg.DataPeers...)
	provs = append(provs, d.bus.topic.Peers()...)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		fctx, cancel := context.WithTimeout(d.ctx, 5*time.Minute)
		defer cancel()
		_, err := d.cfg.Host.Blobs().FetchObject(fctx, id, provs)
		select {
		case d.shardCh <- fetchResult{id: id, ok: err == nil, err: err}:
		case <-d.ctx.Done():
		}
	}()
	return false
}

// evalJob asks the worker to evaluate a head.
type evalJob struct {
	node.TrainJob // never used; makes evalJob a node.Job
	step          uint64
	id            cid.Cid
}

// worker runs jobs one at a time: the engine's residual makes training
// sequential, and the machine's cores go to the one job.
func (d *Node) worker(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case j := <-d.jobs:
			if e, ok := j.(evalJob); ok {
				loss, err := d.cfg.Evaluate(e.step, e.id)
				select {
				case d.evals <- evalResult{step: e.step, id: e.id, loss: loss, err: err}:
				case <-ctx.Done():
					return
				}
				continue
			}
			start := time.Now()
			r := d.cfg.Engine.Run(j)
			d.log.Debug("job done", "job", fmt.Sprintf("%T", j), "seconds", time.Since(start).Seconds())
			select {
			case d.results <- r:
			case <-ctx.Done():
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// Fetch starts a fetch of content the store lacks, bounded by the
// semaphore; its outcome comes back on d.fetched.
func (d *effects) Fetch(f node.Fetch) {
	ctx, wg := d.ctx, d.wg
	provs := parsePeers(f.Providers)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !acquire(ctx, d.sem) {
			return
		}
		defer func() { <-d.sem }()
		fctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		var err error
		switch f.Kind {
		case node.FetchBlob:
			_, err = d.cfg.Store.FetchBlob(fctx, d.cfg.Host.Blobs(), f.CID, -1, provs)
		case node.FetchCheckpoint:
			_, err = d.cfg.Store.FetchCheckpoint(fctx, d.cfg.Host.Blobs(), f.CID, provs)
		default:
			err = errors.New("unknown fetch kind")
		}
		select {
		case d.fetched <- fetchResult{id: f.CID, kind: f.Kind, ok: err == nil, err: err}:
		case <-ctx.Done():
		}
	}()
}
