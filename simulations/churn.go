package simulations

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// sessionLength draws how long a peer stays, with the given mean, from a
// distribution of that name: exponential (memoryless, the default),
// lognormal (sigma 1: most sessions short, a few very long) or weibull
// (shape 0.5: heavier-tailed still, as measured in volunteer networks).
func sessionLength(r *rand.Rand, dist string, mean time.Duration) time.Duration {
	m := float64(mean)
	var v float64
	switch dist {
	case "lognormal":
		v = m * math.Exp(-0.5) * math.Exp(r.NormFloat64())
	case "weibull":
		// Scale λ with mean λ·Γ(1 + 1/k) = λ·Γ(3) = 2λ for k = 0.5.
		v = m / 2 * math.Pow(r.ExpFloat64(), 2)
	default:
		v = m * r.ExpFloat64()
	}
	return time.Duration(min(v, float64(100*365*24*time.Hour)))
}

// TraceEvent is one line of a churn trace: at a virtual time, a peer
// joins (or comes back) or leaves.
type TraceEvent struct {
	At   time.Duration
	Peer string
	Join bool
}

// ParseTrace reads a churn trace: one event a line, "time,peer,event",
// where time is a duration since the start (90s, 2h) or a number of
// seconds, and event is join or leave. Blank lines and lines starting
// with # are skipped. Events are returned in time order (stable).
func ParseTrace(data []byte, file string) ([]TraceEvent, error) {
	var out []TraceEvent
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want time,peer,join|leave", file, n)
		}
		at, err := parseTraceTime(strings.TrimSpace(f[0]))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", file, n, err)
		}
		peer := strings.TrimSpace(f[1])
		if peer == "" || len(peer) > 128 {
			return nil, fmt.Errorf("%s:%d: peer name must be 1 to 128 bytes", file, n)
		}
		var join bool
		switch strings.TrimSpace(f[2]) {
		case "join":
			join = true
		case "leave":
		default:
			return nil, fmt.Errorf("%s:%d: event %q is not join or leave", file, n, f[2])
		}
		out = append(out, TraceEvent{At: at, Peer: peer, Join: join})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	slices.SortStableFunc(out, func(a, b TraceEvent) int {
		switch {
		case a.At < b.At:
			return -1
		case a.At > b.At:
			return 1
		}
		return 0
	})
	return out, nil
}

func parseTraceTime(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	var sec float64
	if _, err := fmt.Sscanf(s, "%g", &sec); err != nil || sec < 0 || math.IsInf(sec, 0) || math.IsNaN(sec) {
		return 0, fmt.Errorf("time %q is not a duration or a number of seconds", s)
	}
	return time.Duration(sec * float64(time.Second)), nil
}

func readTrace(dir fs.FS, name string) ([]TraceEvent, error) {
	if filepath.IsAbs(name) {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("churn trace: %w", err)
		}
		return ParseTrace(b, name)
	}
	if dir == nil {
		return nil, fmt.Errorf("churn trace %s: no directory to read it from", name)
	}
	b, err := fs.ReadFile(dir, name)
	if err != nil {
		return nil, fmt.Errorf("churn trace: %w", err)
	}
	return ParseTrace(b, name)
}
