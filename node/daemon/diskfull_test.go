package daemon

import (
	"context"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// countingHandler counts the log records whose message contains a
// phrase.
type countingHandler struct {
	phrase string
	mu     *sync.Mutex
	n      *int
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.phrase) {
		h.mu.Lock()
		*h.n++
		h.mu.Unlock()
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestDiskFullBacksOff runs a local round and, once a step is final,
// makes one worker's disk full (an injected write error, ENOSPC): the
// worker stops writing for a backoff that doubles (a handful of attempts
// in the seconds that follow, not a hundred a second), says so once in
// its log and on its status page, and the round goes on without it. Once
// the disk has room again, the worker says so and catches up.
func TestDiskFullBacksOff(t *testing.T) {
	train, eval, floor := BuiltinData()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var mu sync.Mutex
	var said, again int
	log := slog.New(multiHandler{countingHandler{"disk full", &mu, &said}, countingHandler{"disk has room again", &mu, &again}})
	l, err := StartLocal(ctx, LocalConfig{Spec: smallSpec(), Workers: 3, Dir: t.TempDir(), Train: train, Eval: eval, Floor: floor, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Run(rctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if err := WaitFor(ctx, 50*time.Millisecond, func() bool { return len(l.Tracker.Finals()) >= 1 }); err != nil {
		t.Fatal(err)
	}
	w := l.Workers[0]
	st := w.cfg.Store
	fails := func() int {
		st.diskMu.Lock()
		defer st.diskMu.Unlock()
		return st.writeFails
	}
	st.diskMu.Lock()
	st.writeErr = &fs.PathError{Op: "write", Path: st.ck.Dir(), Err: syscall.ENOSPC}
	st.diskMu.Unlock()

	if err := WaitFor(ctx, 50*time.Millisecond, func() bool { return fails() > 0 }); err != nil {
		t.Fatalf("the worker never wrote again: %v", err)
	}
	first := time.Now()
	const window = 6 * time.Second
	time.Sleep(window)
	n := fails()
	// Backoffs of 1, 2 and 4 s fit in the window: a few rounds of
	// attempts (each a write of the step's checkpoint or a fetch of it).
	const most = 12
	t.Logf("%d failed writes in %.1f s after the first", n, time.Since(first).Seconds())
	if n > most {
		t.Errorf("%d failed writes in %v: the worker does not back off (at most %d expected)", n, window, most)
	}
	if s := w.Status(); s.DiskFull == "" || !strings.Contains(s.DiskFull, "no space") {
		t.Errorf("the status page does not say the disk is full: %q", s.DiskFull)
	}
	if page := statusPage(w.Status()); !strings.Contains(page, "disk full") {
		t.Error("the status page does not show the full disk")
	}
	mu.Lock()
	if said != 1 {
		t.Errorf("the log said the disk was full %d times, want once", said)
	}
	mu.Unlock()
	finals := len(l.Tracker.Finals())
	if err := WaitFor(ctx, 50*time.Millisecond, func() bool { return len(l.Tracker.Finals()) > finals }); err != nil {
		t.Fatalf("the round stopped with one worker's disk full: %v", err)
	}

	st.diskMu.Lock()
	st.writeErr = nil
	st.diskMu.Unlock()
	err = WaitFor(ctx, 50*time.Millisecond, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return again == 1 && w.Status().DiskFull == "" && w.Status().Step >= uint64(finals)
	})
	if err != nil {
		t.Fatalf("the worker did not recover once the disk had room (said so %d times, status %q, step %d): %v", again, w.Status().DiskFull, w.Status().Step, err)
	}
}

// multiHandler hands every record to each of its handlers.
type multiHandler []slog.Handler

func (m multiHandler) Enabled(context.Context, slog.Level) bool { return true }
func (m multiHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range m {
		_ = h.Handle(ctx, r)
	}
	return nil
}
func (m multiHandler) WithAttrs([]slog.Attr) slog.Handler { return m }
func (m multiHandler) WithGroup(string) slog.Handler      { return m }
