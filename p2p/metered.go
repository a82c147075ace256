package p2p

import (
	"context"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/time/rate"
)

// meteredPiece is the most a metered stream moves per draw on its bucket.
const meteredPiece = 32 << 10

// meteredHost is the host gossipsub runs on: every stream gossipsub opens
// or accepts counts its bytes and, with a bucket set, draws them from the
// host's upload or download bucket (the one the blob exchange draws from).
// A writer over the cap waits, so gossipsub's per-peer queue fills and it
// drops what it would relay beyond the cap; a reader over the cap stops
// reading, leaving the sender's data in the flow-control window. Control
// messages, relays and this host's own messages all count.
type meteredHost struct {
	host.Host
	ctx      context.Context // ends waits when gossip closes
	up, down *rate.Limiter   // nil: no cap
	in, out  *atomic.Int64
}

func (h *meteredHost) wrap(s network.Stream) network.Stream { return &meteredStream{Stream: s, h: h} }

func (h *meteredHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return h.wrap(s), nil
}

func (h *meteredHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(h.wrap(s)) })
}

func (h *meteredHost) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, match, func(s network.Stream) { handler(h.wrap(s)) })
}

type meteredStream struct {
	network.Stream
	h *meteredHost
}

func piece(lim *rate.Limiter) int { return max(1, min(meteredPiece, lim.Burst())) }

// Write sends p in pieces, each drawn from the upload bucket first.
func (s *meteredStream) Write(p []byte) (int, error) {
	lim := s.h.up
	if lim == nil {
		n, err := s.Stream.Write(p)
		s.h.out.Add(int64(n))
		return n, err
	}
	written := 0
	for len(p) > 0 {
		n := min(len(p), piece(lim))
		if err := lim.WaitN(s.h.ctx, n); err != nil {
			return written, err
		}
		m, err := s.Stream.Write(p[:n])
		written += m
		s.h.out.Add(int64(m))
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Read reads at most a piece, then draws what it read from the download
// bucket before returning, so a reader over the cap reads no further.
func (s *meteredStream) Read(p []byte) (int, error) {
	lim := s.h.down
	if lim != nil && len(p) > piece(lim) {
		p = p[:piece(lim)]
	}
	n, err := s.Stream.Read(p)
	s.h.in.Add(int64(n))
	if n > 0 && lim != nil {
		if werr := lim.WaitN(s.h.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}
