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

	"github.com/shoal-network/shoal/tracker/wire"
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

// scheduleChurn plans departures, returns and arrivals, or replays a
// trace.
func (rn *run) scheduleChurn() error {
	c, s, res := rn.c, rn.s, rn.res
	ch := s.Churn
	r := c.Rand()
	if ch.Trace != "" {
		events, err := readTrace(s.Dir, ch.Trace)
		if err != nil {
			return err
		}
		for _, ev := range events {
			c.At(c.Now().Add(ev.At), func() {
				switch {
				case ev.Join && !c.Has(ev.Peer):
					res.joined++
					if err := rn.addPeer(ev.Peer, wire.RoleWorker, rn.drawBehaviour()); err != nil {
						c.Fail(err)
					}
				case ev.Join && !c.Alive(ev.Peer):
					if err := c.Restart(ev.Peer); err != nil {
						c.Fail(err)
					}
				case !ev.Join && c.Has(ev.Peer) && c.Alive(ev.Peer):
					res.departed++
					c.Kill(ev.Peer)
				}
			})
		}
		return nil
	}
	// A session ends at the churn rate; the peer comes back after a
	// while away, for a new session.
	var session func(id string)
	session = func(id string) {
		if ch.Rate <= 0 {
			return
		}
		mean := time.Duration(float64(time.Hour) / float64(ch.Rate))
		c.At(c.Now().Add(sessionLength(r, ch.Session, mean)), func() {
			if !c.Alive(id) {
				return
			}
			res.departed++
			c.Kill(id)
			if ch.Offline <= 0 {
				return
			}
			away := time.Duration(float64(ch.Offline) * r.ExpFloat64())
			c.At(c.Now().Add(away), func() {
				if c.Alive(id) {
					return
				}
				if err := c.Restart(id); err != nil {
					c.Fail(err)
					return
				}
				session(id)
			})
		})
	}
	for _, id := range c.Nodes() {
		session(id)
	}
	if ch.Arrivals > 0 {
		gap := func() time.Duration { return time.Duration(float64(time.Hour) / float64(ch.Arrivals) * r.ExpFloat64()) }
		var arrive func()
		arrive = func() {
			c.At(c.Now().Add(gap()), func() {
				id := simPeerName(rn.counter, rn.total)
				rn.counter++
				res.joined++
				if err := rn.addPeer(id, wire.RoleWorker, rn.drawBehaviour()); err != nil {
					c.Fail(err)
					return
				}
				session(id)
				arrive()
			})
		}
		arrive()
	}
	return nil
}

// schedulePartitions cuts shares of the peers off as the scenario says.
func (rn *run) schedulePartitions() {
	c, s := rn.c, rn.s
	for _, p := range s.Network.Partitions {
		p := p
		c.At(c.Now().Add(time.Duration(p.At)), func() {
			groups := map[string]int{}
			ids := c.Nodes()
			k := int(math.Round(p.Fraction * float64(len(ids))))
			for _, i := range c.Rand().Perm(len(ids))[:k] {
				groups[ids[i]] = 1
			}
			c.Partition(groups)
		})
		c.At(c.Now().Add(time.Duration(p.At+p.For)), func() { c.Heal() })
	}
}
