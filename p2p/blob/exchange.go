package blob

import (
	"golang.org/x/time/rate"

	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-network/shoal/p2p/internal/peerlog"
)

// Options configure an Exchange. Zero fields take the defaults given.
type Options struct {
	// Logger receives log lines; nil discards them.
	Logger *slog.Logger
	// MaxBlobSize is the largest blob Fetch accepts (default 16 GiB).
	MaxBlobSize int64
	// ServeConcurrency and ServePerPeer cap the objects being sent at once,
	// in all and to one peer (defaults 64 and 8); requests over the cap get
	// StatusBusy.
	ServeConcurrency int
	ServePerPeer     int
	// FetchConcurrency caps the object requests in flight across all
	// fetches (default 32); FetchPerPeer caps one fetch's requests in
	// flight to one provider (default 4).
	FetchConcurrency int
	FetchPerPeer     int
	// FetchMemory bounds the chunk bytes one fetch holds at once, being
	// received or waiting to be stored (default 32 MiB): a fetch keeps at
	// most FetchMemory / chunk size chunks in flight (at least one,
	// whatever the chunk size), however large the blob and however many
	// providers serve it.
	FetchMemory int64
	// UploadRate and DownloadRate cap the exchange's payload traffic in
	// bytes per second with token buckets; 0 means no cap.
	UploadRate   int64
	DownloadRate int64
	// UploadLimiter and DownloadLimiter, if set, are token buckets of
	// bytes (see NewLimiter) the exchange shares with the host's other
	// traffic; they take the place of UploadRate and DownloadRate.
	UploadLimiter, DownloadLimiter *rate.Limiter
	// RequestTimeout bounds one object's request and response (default 2 min).
	RequestTimeout time.Duration
	// MaxFailures is how many transport failures in a row drop a provider
	// from a fetch (default 3).
	MaxFailures int
	// OnMisbehaviour, if set, is called (synchronously; it must not block)
	// for every provider caught serving bytes that fail verification or
	// malformed responses.
	OnMisbehaviour func(Misbehaviour)
}

func (o Options) withDefaults() Options {
	if o.MaxBlobSize == 0 {
		o.MaxBlobSize = 16 << 30
	}
	if o.ServeConcurrency == 0 {
		o.ServeConcurrency = 64
	}
	if o.ServePerPeer == 0 {
		o.ServePerPeer = 8
	}
	if o.FetchConcurrency == 0 {
		o.FetchConcurrency = 32
	}
	if o.FetchPerPeer == 0 {
		o.FetchPerPeer = 4
	}
	if o.FetchMemory == 0 {
		o.FetchMemory = 32 << 20
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 2 * time.Minute
	}
	if o.MaxFailures == 0 {
		o.MaxFailures = 3
	}
	return o
}

// Validate reports the first problem with o after defaults are applied.
func (o Options) Validate() error {
	o = o.withDefaults()
	switch {
	case o.MaxBlobSize < 0:
		return fmt.Errorf("blob options: MaxBlobSize %d negative", o.MaxBlobSize)
	case o.ServeConcurrency < 1 || o.ServePerPeer < 1 || o.ServePerPeer > o.ServeConcurrency:
		return fmt.Errorf("blob options: serve concurrency %d per peer %d: need 1 <= per peer <= total", o.ServeConcurrency, o.ServePerPeer)
	case o.FetchConcurrency < 1 || o.FetchPerPeer < 1:
		return fmt.Errorf("blob options: fetch concurrency %d per peer %d: need both >= 1", o.FetchConcurrency, o.FetchPerPeer)
	case o.FetchMemory < 0:
		return fmt.Errorf("blob options: FetchMemory %d negative", o.FetchMemory)
	case o.UploadRate < 0 || o.DownloadRate < 0:
		return errors.New("blob options: rates must not be negative")
	case o.RequestTimeout < 10*time.Millisecond:
		return fmt.Errorf("blob options: RequestTimeout %s below 10ms", o.RequestTimeout)
	case o.MaxFailures < 1:
		return fmt.Errorf("blob options: MaxFailures %d below 1", o.MaxFailures)
	}
	return nil
}

// Misbehaviour reports a provider that served bytes failing verification
// or a malformed response while this host fetched Blob.
type Misbehaviour struct {
	Peer   peer.ID
	Blob   cid.Cid
	Object cid.Cid
	Reason string
}

// ErrClosed is returned by Fetch on a closed Exchange.
var ErrClosed = errors.New("blob: exchange closed")

// Exchange serves the objects of a Store to peers and fetches blobs from
// them, verifying every object against its CID before it reaches the store.
type Exchange struct {
	h     host.Host
	store Store
	opts  Options
	log   *peerlog.Logger
	up    *bandwidth
	down  *bandwidth
	slots chan struct{} // global fetch concurrency

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	closed     bool
	serving    int
	servingPer map[peer.ID]int
	streams    map[network.Stream]struct{}
	penalties  map[peer.ID]int

	servedBytes  atomic.Int64
	fetchedBytes atomic.Int64
}

// New starts an Exchange serving store on h. Close stops it.
func New(h host.Host, store Store, opts Options) (*Exchange, error) {
	if store == nil {
		return nil, errors.New("blob: nil store")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	x := &Exchange{
		h:          h,
		store:      store,
		opts:       opts,
		log:        peerlog.New(opts.Logger, 5, 10*time.Second),
		up:         newBandwidth(opts.UploadLimiter, opts.UploadRate),
		down:       newBandwidth(opts.DownloadLimiter, opts.DownloadRate),
		slots:      make(chan struct{}, opts.FetchConcurrency),
		ctx:        ctx,
		cancel:     cancel,
		servingPer: make(map[peer.ID]int),
		streams:    make(map[network.Stream]struct{}),
		penalties:  make(map[peer.ID]int),
	}
	h.SetStreamHandler(ProtocolID, x.handleStream)
	return x, nil
}

// Close stops serving, cancels fetches in progress and waits for every
// request handler and fetch to finish.
func (x *Exchange) Close() error {
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return nil
	}
	x.closed = true
	x.h.RemoveStreamHandler(ProtocolID)
	for s := range x.streams {
		_ = s.Reset()
	}
	x.mu.Unlock()
	x.cancel()
	x.wg.Wait()
	return nil
}

// enter registers a unit of work (a handler or a fetch) unless closed.
func (x *Exchange) enter() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return false
	}
	x.wg.Add(1)
	return true
}

// Stats reports the payload bytes served to peers and fetched from them.
func (x *Exchange) Stats() (served, fetched int64) {
	return x.servedBytes.Load(), x.fetchedBytes.Load()
}

// Penalties returns how many times p was caught misbehaving.
func (x *Exchange) Penalties(p peer.ID) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.penalties[p]
}

func (x *Exchange) penalize(m Misbehaviour) {
	x.mu.Lock()
	x.penalties[m.Peer]++
	x.mu.Unlock()
	x.log.Warn(m.Peer, "blob: provider misbehaved; dropped for this blob", m.Reason, "blob", m.Blob.String(), "object", m.Object.String())
	if cm := x.h.ConnManager(); cm != nil {
		cm.UpsertTag(m.Peer, "shoal-blob-misbehaved", func(v int) int { return v - 50 })
	}
	if x.opts.OnMisbehaviour != nil {
		x.opts.OnMisbehaviour(m)
	}
}

// handleStream serves the requests of one stream.
func (x *Exchange) handleStream(s network.Stream) {
	if !x.enter() {
		_ = s.Reset()
		return
	}
	defer x.wg.Done()
	x.mu.Lock()
	x.streams[s] = struct{}{}
	x.mu.Unlock()
	defer func() {
		x.mu.Lock()
		delete(x.streams, s)
		x.mu.Unlock()
	}()
	p := s.Conn().RemotePeer()
	br := bufio.NewReaderSize(s, maxRequestLen)
	for {
		done, err := x.serve(s, br, p)
		if err != nil {
			_ = s.Reset()
			return
		}
		if done {
			_ = s.Close()
			return
		}
	}
}

// Timeouts of a serving stream: the wait for a request's first byte, and
// for the rest of it once it has started.
const (
	requestIdleTimeout   = 30 * time.Second
	requestHeaderTimeout = 10 * time.Second
)

// serve answers one request from br; done reports a clean end of the
// stream, err one that must be reset.
func (x *Exchange) serve(s network.Stream, br *bufio.Reader, p peer.ID) (done bool, err error) {
	_ = s.SetReadDeadline(time.Now().Add(requestIdleTimeout))
	if _, err := br.Peek(1); err != nil {
		if err == io.EOF {
			return true, nil
		}
		x.log.Debug(p, "blob: stream ended", err.Error())
		return false, err
	}
	_ = s.SetReadDeadline(time.Now().Add(min(requestHeaderTimeout, x.opts.RequestTimeout)))
	req, err := readRequest(br)
	if err != nil {
		if errors.Is(err, errBadRequest) {
			x.log.Warn(p, "blob: rejected request", err.Error())
			if err := x.reply(s, StatusBadRequest); err != nil {
				return false, err
			}
			return true, nil
		}
		x.log.Debug(p, "blob: request not received", err.Error())
		return false, err
	}
	if !x.acquireServe(p) {
		x.log.Debug(p, "blob: request refused", "too many requests in progress", "cid", req.CID.String())
		return false, x.reply(s, StatusBusy)
	}
	defer x.releaseServe(p)
	data, err := x.store.Get(req.CID)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			x.log.Slog().Error("blob: store read failed", "cid", req.CID.String(), "err", err)
		}
		return false, x.reply(s, StatusNotFound)
	}
	if len(data) > req.MaxLen {
		x.log.Debug(p, "blob: request refused", fmt.Sprintf("object is %d bytes, peer accepts %d", len(data), req.MaxLen), "cid", req.CID.String())
		return false, x.reply(s, StatusTooLarge)
	}
	_ = s.SetWriteDeadline(time.Now().Add(x.opts.RequestTimeout))
	ctx, cancel := context.WithTimeout(x.ctx, x.opts.RequestTimeout)
	defer cancel()
	if err := x.up.write(ctx, s, appendResponseHeader(nil, StatusOK, len(data))); err != nil {
		return false, err
	}
	if err := x.up.write(ctx, s, data); err != nil {
		x.log.Debug(p, "blob: send failed", err.Error(), "cid", req.CID.String())
		return false, err
	}
	x.servedBytes.Add(int64(len(data)))
	return false, nil
}

func (x *Exchange) reply(s network.Stream, st Status) error {
	_ = s.SetWriteDeadline(time.Now().Add(requestHeaderTimeout))
	_, err := s.Write(appendResponseHeader(nil, st, 0))
	return err
}

func (x *Exchange) acquireServe(p peer.ID) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.serving >= x.opts.ServeConcurrency || x.servingPer[p] >= x.opts.ServePerPeer {
		return false
	}
	x.serving++
	x.servingPer[p]++
	return true
}

func (x *Exchange) releaseServe(p peer.ID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.serving--
	if x.servingPer[p]--; x.servingPer[p] <= 0 {
		delete(x.servingPer, p)
	}
}
