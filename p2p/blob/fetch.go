package blob

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// FetchResult describes a finished (or failed) fetch.
type FetchResult struct {
	Root   cid.Cid
	Size   int64
	Chunks int
	// Fetched counts the chunks downloaded now; the rest were already
	// in the store.
	Fetched int
	// BytesFrom counts the verified bytes each provider delivered.
	BytesFrom map[peer.ID]int64
	// Misbehaving lists the providers caught serving bad data.
	Misbehaving []Misbehaviour
}

// failure kinds of one object request.
type failKind int

const (
	failTransport  failKind = iota // dial, stream, timeout, truncation
	failNotFound                   // provider lacks the object
	failBusy                       // provider is at its serving cap
	failUnusable                   // provider refuses our (valid) request
	failMisbehaved                 // bad bytes or a malformed response
)

type fetchError struct {
	kind failKind
	err  error
}

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

func fail(kind failKind, format string, args ...any) error {
	return &fetchError{kind: kind, err: fmt.Errorf(format, args...)}
}

func kindOf(err error) failKind {
	var fe *fetchError
	if errors.As(err, &fe) {
		return fe.kind
	}
	return failTransport
}

// reqStream is a requester's stream to one provider, reused for a
// sequence of requests.
type reqStream struct {
	p  peer.ID
	s  network.Stream
	br *bufio.Reader
}

// close ends the stream cleanly; a nil reqStream is a no-op.
func (r *reqStream) close() {
	if r != nil {
		_ = r.s.Close()
	}
}

// getObject asks p, over *rs (opened if nil), for object c, of exactly
// want bytes if exact, else at most want, and returns the bytes once they
// verify against c. After a failure that leaves the stream unusable it
// resets the stream and sets *rs to nil.
func (x *Exchange) getObject(ctx context.Context, p peer.ID, rs **reqStream, c cid.Cid, want int, exact bool) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, x.opts.RequestTimeout)
	defer cancel()
	if *rs == nil {
		s, err := x.h.NewStream(ctx, p, ProtocolID)
		if err != nil {
			return nil, fail(failTransport, "open stream: %w", err)
		}
		*rs = &reqStream{p: p, s: s, br: bufio.NewReaderSize(s, 64)}
	}
	r := *rs
	keep := false
	stop := context.AfterFunc(ctx, func() { _ = r.s.Reset() })
	defer func() {
		if !stop() || !keep {
			_ = r.s.Reset()
			*rs = nil
		}
	}()
	if dl, has := ctx.Deadline(); has {
		_ = r.s.SetDeadline(dl)
	}
	if _, err := r.s.Write(request{CID: c, MaxLen: want}.encode()); err != nil {
		return nil, fail(failTransport, "send request: %w", err)
	}
	st, n, err := readResponseHeader(r.br, want)
	if err != nil {
		if errors.Is(err, errBadResponse) {
			return nil, fail(failMisbehaved, "%w", err)
		}
		return nil, fail(failTransport, "read response: %w", err)
	}
	switch st {
	case StatusOK:
	case StatusNotFound:
		keep = true
		return nil, fail(failNotFound, "provider does not have %s", c)
	case StatusBusy:
		keep = true
		return nil, fail(failBusy, "provider busy")
	case StatusTooLarge:
		if exact {
			// The CID fixes the content, so an honest provider's copy has
			// exactly the length the manifest gives.
			return nil, fail(failMisbehaved, "claims %s is larger than its %d bytes", c, want)
		}
		keep = true
		return nil, fail(failUnusable, "object larger than %d bytes", want)
	default:
		return nil, fail(failUnusable, "provider answered %s", st)
	}
	if exact && n != want {
		return nil, fail(failMisbehaved, "offered %d bytes for %s, which has %d", n, c, want)
	}
	buf := make([]byte, n)
	h := sha256.New()
	if err := x.down.readFull(ctx, r.br, buf, h); err != nil {
		return nil, fail(failTransport, "read %d bytes: %w", n, err)
	}
	var sum [sha256.Size]byte
	if err := content.VerifyDigest(c, [sha256.Size]byte(h.Sum(sum[:0]))); err != nil {
		return nil, fail(failMisbehaved, "served bytes that fail verification: %w", err)
	}
	keep = true
	x.fetchedBytes.Add(int64(n))
	return buf, nil
}

// Fetch downloads the blob root from providers into the exchange's store;
// see FetchInto.
func (x *Exchange) Fetch(ctx context.Context, root cid.Cid, providers []peer.ID) (*FetchResult, error) {
	return x.FetchInto(ctx, x.store, root, providers)
}

// FetchInto downloads the blob root (a manifest in package content's
// format, and its chunks) from providers into dst, and returns when every
// chunk is stored. The manifest comes from dst if it holds it, else from
// the first provider that serves one that verifies, and is stored before
// any chunk. Chunks are requested from all providers at once, up to
// FetchPerPeer at a time from each, each hashed once as it arrives and
// handed to dst.PutVerified only once it verifies, so memory holds no more
// than the chunks in flight, at most FetchMemory bytes of them. A provider that serves bad bytes or a malformed
// response is dropped from this fetch and reported
// (Options.OnMisbehaviour, FetchResult.Misbehaving); one that fails
// MaxFailures times in a row is dropped without blame. Chunks dst already
// holds are not fetched again, so a fetch cut short resumes where it
// stopped.
//
// dst may be another store than the exchange's (a checkpoint store on
// disk, say); the exchange serves only its own, so a dst that peers should
// be served from must be reachable through it.
func (x *Exchange) FetchInto(ctx context.Context, dst Store, root cid.Cid, providers []peer.ID) (*FetchResult, error) {
	if err := content.Check(root); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", root, err)
	}
	if !x.enter() {
		return nil, ErrClosed
	}
	defer x.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(x.ctx, cancel)
	defer stop()

	res := &FetchResult{Root: root, BytesFrom: make(map[peer.ID]int64)}
	provs := x.providers(providers)

	mb, from, err := x.fetchManifest(ctx, dst, root, provs, res)
	if err != nil {
		return res, fmt.Errorf("fetch %s: %w", root, err)
	}
	m, err := content.DecodeManifest(mb)
	if err != nil {
		// The bytes hash to root, so the provider served what root names:
		// root is not a manifest.
		return res, fmt.Errorf("fetch %s: %w", root, err)
	}
	res.Size, res.Chunks = m.Size, len(m.Chunks)
	if m.Size > x.opts.MaxBlobSize {
		return res, fmt.Errorf("fetch %s: blob of %d bytes exceeds the %d-byte limit", root, m.Size, x.opts.MaxBlobSize)
	}
	if m.ChunkSize > MaxObjectSize {
		return res, fmt.Errorf("fetch %s: chunks of %d bytes exceed the %d-byte object limit of the exchange", root, m.ChunkSize, MaxObjectSize)
	}
	if from != "" {
		res.BytesFrom[from] += int64(len(mb))
		id, err := dst.PutManifest(m)
		if err != nil {
			return res, fmt.Errorf("fetch %s: store manifest: %w", root, err)
		}
		if !id.Equals(root) {
			return res, fmt.Errorf("fetch %s: the store took the manifest as %s", root, id)
		}
	}

	sc := newSchedule(m, dst)
	if err := x.fetchChunks(ctx, dst, root, m, sc, provs, res); err != nil {
		return res, fmt.Errorf("fetch %s: %w", root, err)
	}
	return res, nil
}

// providers returns the distinct providers other than this host.
func (x *Exchange) providers(providers []peer.ID) []peer.ID {
	provs := make([]peer.ID, 0, len(providers))
	seen := make(map[peer.ID]bool)
	for _, p := range providers {
		if p != x.h.ID() && p != "" && !seen[p] {
			seen[p] = true
			provs = append(provs, p)
		}
	}
	return provs
}

// FetchObject downloads one object (at most MaxObjectSize bytes) by its
// CID from the first provider that serves bytes that verify, stores it and
// returns it. Small content (an update's payload, a residual) travels this
// way without a manifest.
func (x *Exchange) FetchObject(ctx context.Context, c cid.Cid, providers []peer.ID) ([]byte, error) {
	if err := content.Check(c); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", c, err)
	}
	if b, err := x.store.Get(c); err == nil {
		return b, nil
	}
	if !x.enter() {
		return nil, ErrClosed
	}
	defer x.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(x.ctx, cancel)
	defer stop()
	provs := x.providers(providers)
	res := &FetchResult{Root: c, BytesFrom: make(map[peer.ID]int64)}
	b, _, err := x.fetchRoot(ctx, c, provs, res, MaxObjectSize)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", c, err)
	}
	if err := x.store.PutVerified(c, b); err != nil {
		return nil, fmt.Errorf("fetch %s: store: %w", c, err)
	}
	return b, nil
}

// fetchManifest returns the manifest's bytes from dst or from the first
// provider that serves bytes that verify, with that provider.
func (x *Exchange) fetchManifest(ctx context.Context, dst Store, root cid.Cid, provs []peer.ID, res *FetchResult) ([]byte, peer.ID, error) {
	if b, err := dst.Get(root); err == nil {
		return b, "", nil
	}
	return x.fetchRoot(ctx, root, provs, res, maxManifestWire)
}

// fetchRoot gets one object of at most max bytes from the first provider
// that serves bytes that verify.
func (x *Exchange) fetchRoot(ctx context.Context, root cid.Cid, provs []peer.ID, res *FetchResult, max int) ([]byte, peer.ID, error) {
	var reasons []string
	for _, p := range provs {
		var last error
		for attempt := range x.opts.MaxFailures {
			if err := x.acquireSlot(ctx); err != nil {
				return nil, "", err
			}
			var rs *reqStream
			b, err := x.getObject(ctx, p, &rs, root, max, false)
			rs.close()
			x.releaseSlot()
			if err == nil {
				return b, p, nil
			}
			if ctx.Err() != nil {
				return nil, "", ctx.Err()
			}
			last = err
			kind := kindOf(err)
			if kind == failMisbehaved {
				x.report(res, Misbehaviour{Peer: p, Blob: root, Object: root, Reason: err.Error()})
			}
			if kind != failTransport && kind != failBusy {
				break
			}
			if err := sleepCtx(ctx, backoff(attempt)); err != nil {
				return nil, "", err
			}
		}
		reasons = append(reasons, fmt.Sprintf("%s: %v", p, last))
	}
	if len(provs) == 0 {
		return nil, "", errors.New("no providers")
	}
	return nil, "", fmt.Errorf("no provider served %s (%s)", root, strings.Join(reasons, "; "))
}

func (x *Exchange) report(res *FetchResult, m Misbehaviour) {
	res.Misbehaving = append(res.Misbehaving, m)
	x.penalize(m)
}

func (x *Exchange) acquireSlot(ctx context.Context) error {
	select {
	case x.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (x *Exchange) releaseSlot() { <-x.slots }

func backoff(attempt int) time.Duration {
	return min(50*time.Millisecond<<attempt, 2*time.Second)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fetchChunks runs FetchPerPeer workers per provider until every chunk is
// stored or no provider can supply the rest. The workers share a budget of
// FetchMemory / chunk size chunks in flight: a worker takes a place before
// it takes a chunk and gives it back once the chunk is stored or has
// failed, so the fetch holds at most that many chunk buffers at once.
func (x *Exchange) fetchChunks(ctx context.Context, dst Store, root cid.Cid, m *Manifest, sc *schedule, provs []peer.ID, res *FetchResult) error {
	if sc.finished() {
		return nil
	}
	if len(provs) == 0 {
		return errors.New("no providers")
	}
	places := make(chan struct{}, x.chunkPlaces(m.ChunkSize))
	var resMu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range provs {
		for range x.opts.FetchPerPeer {
			wg.Add(1)
			go func() {
				defer wg.Done()
				x.chunkWorker(ctx, dst, root, m, sc, p, places, res, &resMu)
			}()
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if !sc.finished() {
		return sc.failure()
	}
	return nil
}

// chunkPlaces is how many chunks of chunkSize bytes one fetch may hold at
// once: FetchMemory / chunkSize, at least one.
func (x *Exchange) chunkPlaces(chunkSize int) int {
	if chunkSize < 1 {
		return 1
	}
	return int(max(1, min(x.opts.FetchMemory/int64(chunkSize), 1<<16)))
}

func (x *Exchange) chunkWorker(ctx context.Context, dst Store, root cid.Cid, m *Manifest, sc *schedule, p peer.ID, places chan struct{}, res *FetchResult, resMu *sync.Mutex) {
	busy := 0
	var rs *reqStream
	defer func() { rs.close() }()
	for {
		select {
		case places <- struct{}{}:
		case <-ctx.Done():
			return
		}
		i, wake, st := sc.take(p)
		switch st {
		case takeDone:
			<-places
			return
		case takeWait:
			<-places
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		if err := x.acquireSlot(ctx); err != nil {
			<-places
			sc.requeue(i)
			return
		}
		c := m.Chunks[i]
		data, err := x.getObject(ctx, p, &rs, c, m.ChunkLen(i), true)
		x.releaseSlot()
		if err == nil {
			perr := dst.PutVerified(c, data)
			<-places
			if perr != nil {
				sc.abort(fmt.Errorf("store chunk %d: %w", i, perr))
				return
			}
			sc.complete(i, p)
			resMu.Lock()
			res.Fetched++
			res.BytesFrom[p] += int64(len(data))
			resMu.Unlock()
			busy = 0
			continue
		}
		<-places
		if ctx.Err() != nil {
			sc.requeue(i)
			return
		}
		switch kindOf(err) {
		case failMisbehaved:
			if sc.drop(p, i, err) {
				resMu.Lock()
				x.report(res, Misbehaviour{Peer: p, Blob: root, Object: c, Reason: err.Error()})
				resMu.Unlock()
			}
			return
		case failUnusable:
			sc.drop(p, i, err)
			return
		case failNotFound:
			sc.lack(p, i)
		case failBusy:
			sc.requeue(i)
			if sleepCtx(ctx, backoff(busy)) != nil {
				return
			}
			busy++
		case failTransport:
			if sc.failed(p, i, err, x.opts.MaxFailures) {
				return
			}
			if sleepCtx(ctx, backoff(0)) != nil {
				return
			}
		}
	}
}

// schedule hands out a fetch's chunk indices to workers.
type schedule struct {
	mu       sync.Mutex
	state    []chunkState
	queue    []int // pending indices, in hand-out order
	left     int   // chunks not yet stored
	inflight int
	lacks    map[peer.ID]map[int]bool
	dropped  map[peer.ID]error
	failures map[peer.ID]int
	aborted  error
	wake     chan struct{} // closed and replaced on every change
}

type chunkState uint8

const (
	chunkPending chunkState = iota
	chunkInflight
	chunkStored
)

type takeStatus int

const (
	takeGot takeStatus = iota
	takeWait
	takeDone
)

func newSchedule(m *Manifest, s Store) *schedule {
	sc := &schedule{
		state:    make([]chunkState, len(m.Chunks)),
		lacks:    make(map[peer.ID]map[int]bool),
		dropped:  make(map[peer.ID]error),
		failures: make(map[peer.ID]int),
		wake:     make(chan struct{}),
	}
	for i, c := range m.Chunks {
		if s.Has(c) {
			sc.state[i] = chunkStored
			continue
		}
		sc.queue = append(sc.queue, i)
		sc.left++
	}
	return sc
}

func (sc *schedule) changed() {
	close(sc.wake)
	sc.wake = make(chan struct{})
}

func (sc *schedule) finished() bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.left == 0
}

// take returns a chunk for p to fetch, a channel to wait on if none is
// available yet, or takeDone when p has nothing more to do.
func (sc *schedule) take(p peer.ID) (int, <-chan struct{}, takeStatus) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.left == 0 || sc.aborted != nil || sc.dropped[p] != nil {
		return 0, nil, takeDone
	}
	lacks := sc.lacks[p]
	for qi, i := range sc.queue {
		if lacks[i] {
			continue
		}
		sc.queue = append(sc.queue[:qi], sc.queue[qi+1:]...)
		sc.state[i] = chunkInflight
		sc.inflight++
		return i, nil, takeGot
	}
	// Nothing for p now. If p lacks every chunk not yet stored, it never
	// will have work; otherwise an in-flight chunk may come back.
	if len(lacks) > 0 {
		all := true
		for i, st := range sc.state {
			if st != chunkStored && !lacks[i] {
				all = false
				break
			}
		}
		if all {
			return 0, nil, takeDone
		}
	}
	if sc.inflight == 0 {
		return 0, nil, takeDone
	}
	return 0, sc.wake, takeWait
}

func (sc *schedule) complete(i int, p peer.ID) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.state[i] = chunkStored
	sc.inflight--
	sc.left--
	sc.failures[p] = 0
	sc.changed()
}

func (sc *schedule) requeueLocked(i int) {
	sc.state[i] = chunkPending
	sc.inflight--
	sc.queue = append(sc.queue, i)
	sc.changed()
}

func (sc *schedule) requeue(i int) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.requeueLocked(i)
}

// lack records that p does not have chunk i.
func (sc *schedule) lack(p peer.ID, i int) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.lacks[p] == nil {
		sc.lacks[p] = make(map[int]bool)
	}
	sc.lacks[p][i] = true
	sc.requeueLocked(i)
}

// drop removes p from the fetch; it reports whether p was still in it.
func (sc *schedule) drop(p peer.ID, i int, err error) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.requeueLocked(i)
	if sc.dropped[p] != nil {
		return false
	}
	sc.dropped[p] = err
	return true
}

// failed counts a transport failure of p; it reports whether p is dropped.
func (sc *schedule) failed(p peer.ID, i int, err error, limit int) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.requeueLocked(i)
	sc.failures[p]++
	if sc.failures[p] >= limit {
		if sc.dropped[p] == nil {
			sc.dropped[p] = fmt.Errorf("%d failures in a row, last: %w", sc.failures[p], err)
		}
		return true
	}
	return sc.dropped[p] != nil
}

func (sc *schedule) abort(err error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.aborted == nil {
		sc.aborted = err
	}
	sc.changed()
}

// failure explains why the fetch stopped short.
func (sc *schedule) failure() error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.aborted != nil {
		return sc.aborted
	}
	var parts []string
	for p, err := range sc.dropped {
		parts = append(parts, fmt.Sprintf("%s dropped: %v", p, err))
	}
	for p, l := range sc.lacks {
		if sc.dropped[p] == nil {
			parts = append(parts, fmt.Sprintf("%s lacks %d chunks", p, len(l)))
		}
	}
	return fmt.Errorf("%d of %d chunks unavailable from the providers (%s)", sc.left, len(sc.state), strings.Join(parts, "; "))
}
