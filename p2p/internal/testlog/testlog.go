// Package testlog records log/slog output so tests can check what was
// logged.
package testlog

import (
	"context"
	"log/slog"
	"strings"
	"sync"
)

// Recorder is a slog.Handler that keeps every record as a line of text:
// the message followed by key=value attributes.
type Recorder struct {
	mu    sync.Mutex
	lines []string
}

// Logger returns a logger writing to r.
func (r *Recorder) Logger() *slog.Logger { return slog.New(r) }

// Enabled implements slog.Handler; every level is recorded.
func (r *Recorder) Enabled(context.Context, slog.Level) bool { return true }

// WithAttrs implements slog.Handler.
func (r *Recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return (&child{r: r}).WithAttrs(as)
}

// WithGroup implements slog.Handler; groups are flattened.
func (r *Recorder) WithGroup(string) slog.Handler { return r }

// Handle implements slog.Handler.
func (r *Recorder) Handle(_ context.Context, rec slog.Record) error {
	r.add(rec, "")
	return nil
}

func (r *Recorder) add(rec slog.Record, attrs string) {
	var b strings.Builder
	b.WriteString(rec.Level.String() + " " + rec.Message + attrs)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	r.mu.Unlock()
}

type child struct {
	r     *Recorder
	attrs string
}

func (c *child) Enabled(context.Context, slog.Level) bool { return true }
func (c *child) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	for _, a := range as {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
	}
	return &child{r: c.r, attrs: c.attrs + b.String()}
}
func (c *child) WithGroup(string) slog.Handler { return c }
func (c *child) Handle(_ context.Context, rec slog.Record) error {
	c.r.add(rec, c.attrs)
	return nil
}

// Find returns the first line containing every one of subs.
func (r *Recorder) Find(subs ...string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
next:
	for _, l := range r.lines {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		return l, true
	}
	return "", false
}

// Count returns how many lines contain every one of subs.
func (r *Recorder) Count(subs ...string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
next:
	for _, l := range r.lines {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		n++
	}
	return n
}

// String returns every line recorded.
func (r *Recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}
