// Package peerlog writes log lines about remote peers without letting a
// hostile peer flood the log: each peer gets a small budget of lines per
// interval, and lines over budget are counted and summarised in the peer's
// next line that gets through.
package peerlog

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// maxTracked bounds the peers remembered at once; past it the table is
// cleared, which at worst lets a few extra lines through.
const maxTracked = 4096

// Logger logs lines naming a peer, at most Burst lines per peer per Interval.
type Logger struct {
	log      *slog.Logger
	burst    int
	interval time.Duration

	mu    sync.Mutex
	peers map[peer.ID]*budget
}

type budget struct {
	start      time.Time
	used       int
	suppressed int
}

// New returns a Logger writing to log (nil discards) at most burst lines per
// peer per interval.
func New(log *slog.Logger, burst int, interval time.Duration) *Logger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if burst < 1 {
		burst = 1
	}
	return &Logger{log: log, burst: burst, interval: interval, peers: make(map[peer.ID]*budget)}
}

// Slog returns the underlying logger.
func (l *Logger) Slog() *slog.Logger { return l.log }

// Log writes msg at level with attributes "peer" and "reason", followed by
// args, unless p has used up its budget.
func (l *Logger) Log(level slog.Level, p peer.ID, msg, reason string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	now := time.Now()
	l.mu.Lock()
	b := l.peers[p]
	if b == nil {
		if len(l.peers) >= maxTracked {
			clear(l.peers)
		}
		b = &budget{start: now}
		l.peers[p] = b
	}
	if now.Sub(b.start) >= l.interval {
		b.start, b.used = now, 0
	}
	if b.used >= l.burst {
		b.suppressed++
		l.mu.Unlock()
		return
	}
	b.used++
	suppressed := b.suppressed
	b.suppressed = 0
	l.mu.Unlock()

	attrs := make([]any, 0, len(args)+6)
	attrs = append(attrs, "peer", p.String(), "reason", reason)
	attrs = append(attrs, args...)
	if suppressed > 0 {
		attrs = append(attrs, "suppressed_lines", suppressed)
	}
	l.log.Log(context.Background(), level, msg, attrs...)
}

// Warn logs at warning level; see Log.
func (l *Logger) Warn(p peer.ID, msg, reason string, args ...any) {
	l.Log(slog.LevelWarn, p, msg, reason, args...)
}

// Info logs at info level; see Log.
func (l *Logger) Info(p peer.ID, msg, reason string, args ...any) {
	l.Log(slog.LevelInfo, p, msg, reason, args...)
}

// Debug logs at debug level; see Log.
func (l *Logger) Debug(p peer.ID, msg, reason string, args ...any) {
	l.Log(slog.LevelDebug, p, msg, reason, args...)
}
