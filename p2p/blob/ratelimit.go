package blob

import (
	"context"
	"io"

	"golang.org/x/time/rate"
)

// ioPiece is the unit in which rate-limited transfers draw tokens.
const ioPiece = 32 << 10

// bandwidth is a token bucket of bytes; a nil *bandwidth is unlimited.
type bandwidth struct {
	lim   *rate.Limiter
	piece int
}

// NewLimiter returns a token bucket of bytes refilling at bytesPerSec
// with room for a tenth of a second of traffic (at least 32 KiB, the piece
// in which transfers draw from it), or nil for no limit. A host shares one
// per direction between its traffic (blobs and gossip) through
// Options.UploadLimiter and DownloadLimiter.
func NewLimiter(bytesPerSec int64) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bytesPerSec), max(int(bytesPerSec/10), ioPiece))
}

// newBandwidth draws from shared if set, else from a bucket of its own
// refilling at bytesPerSec; nil for no limit.
func newBandwidth(shared *rate.Limiter, bytesPerSec int64) *bandwidth {
	lim := shared
	if lim == nil {
		lim = NewLimiter(bytesPerSec)
	}
	if lim == nil {
		return nil
	}
	return &bandwidth{lim: lim, piece: max(1, min(ioPiece, lim.Burst()))}
}

// write writes p to w, waiting for tokens before each piece.
func (b *bandwidth) write(ctx context.Context, w io.Writer, p []byte) error {
	if b == nil {
		_, err := w.Write(p)
		return err
	}
	for len(p) > 0 {
		n := min(len(p), b.piece)
		if err := b.lim.WaitN(ctx, n); err != nil {
			return err
		}
		if _, err := w.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// hashPiece is the unit in which an unthrottled read is hashed as it
// arrives, so that hashing overlaps with the transfer of the next piece.
const hashPiece = 128 << 10

// readFull fills p from r, writing each piece to h as it arrives. A
// throttled read waits for tokens before each piece, leaving data in the
// sender's flow-control window.
func (b *bandwidth) readFull(ctx context.Context, r io.Reader, p []byte, h io.Writer) error {
	piece := hashPiece
	if b != nil {
		piece = b.piece
	}
	for len(p) > 0 {
		n := min(len(p), piece)
		if b != nil {
			if err := b.lim.WaitN(ctx, n); err != nil {
				return err
			}
		}
		if _, err := io.ReadFull(r, p[:n]); err != nil {
			return err
		}
		h.Write(p[:n])
		p = p[n:]
	}
	return nil
}
