package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws a one-line progress bar on a terminal. On anything else
// it draws nothing and update reports false, so the caller logs instead.
type progress struct {
	w     io.Writer
	on    bool
	total int
	start time.Time
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer, terminal bool, total int) *progress {
	return &progress{w: w, on: terminal, total: total, start: time.Now()}
}

// update redraws the bar (at most ten times a second) and reports whether
// a bar is shown.
func (p *progress) update(step int, loss float32, tokensPerSec float64) bool {
	if !p.on {
		return false
	}
	now := time.Now()
	if step < p.total && now.Sub(p.last) < 100*time.Millisecond {
		return true
	}
	p.last = now
	const width = 24
	filled := width * step / p.total
	eta := time.Duration(0)
	if step > 0 {
		eta = time.Duration(float64(now.Sub(p.start)) * float64(p.total-step) / float64(step)).Round(time.Second)
	}
	fmt.Fprintf(p.w, "\r\033[K%5d/%d [%s%s] loss %.4f  %.0f tok/s  eta %s",
		step, p.total, strings.Repeat("█", filled), strings.Repeat("░", width-filled), loss, tokensPerSec, eta)
	p.drawn = true
	return true
}

// clear removes the bar so a log line can be printed; the next update
// redraws it.
func (p *progress) clear() {
	if p.on && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
		p.last = time.Time{}
	}
}

// done removes the bar for good.
func (p *progress) done() { p.clear() }
