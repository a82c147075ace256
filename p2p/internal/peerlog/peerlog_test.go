package peerlog

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

type lines struct {
	mu sync.Mutex
	l  []string
}

func (h *lines) Enabled(context.Context, slog.Level) bool { return true }
func (h *lines) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *lines) WithGroup(string) slog.Handler            { return h }
func (h *lines) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	h.mu.Lock()
	h.l = append(h.l, b.String())
	h.mu.Unlock()
	return nil
}

func TestBudgetPerPeer(t *testing.T) {
	h := &lines{}
	l := New(slog.New(h), 3, 50*time.Millisecond)
	a, b := peer.ID("a"), peer.ID("b")
	for range 100 {
		l.Warn(a, "flood", "spam")
	}
	l.Warn(b, "other", "fine")
	if len(h.l) != 4 {
		t.Fatalf("%d lines logged, want 3 for the flooding peer and 1 for the other:\n%s", len(h.l), strings.Join(h.l, "\n"))
	}
	time.Sleep(60 * time.Millisecond)
	l.Warn(a, "flood", "spam")
	last := h.l[len(h.l)-1]
	if !strings.Contains(last, "suppressed_lines=97") || !strings.Contains(last, "peer=") || !strings.Contains(last, "reason=spam") {
		t.Fatalf("line after the interval %q does not report the 97 suppressed lines", last)
	}
}
