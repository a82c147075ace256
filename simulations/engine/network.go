package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/shoal-network/shoal/internal/bytesize"
)

// Link is one machine's connection to the network.
type Link struct {
	Down, Up float64       // bytes per second; 0 is unlimited
	Latency  time.Duration // one way, between the machine and the network's core
}

func (l Link) String() string {
	return fmt.Sprintf("down %s up %s latency %v", bytesize.Rate(l.Down), bytesize.Rate(l.Up), l.Latency)
}

// secondsPerByte is the time a byte takes at rate r (0 when unlimited).
func secondsPerByte(r float64) float64 {
	if r <= 0 || math.IsInf(r, 1) {
		return 0
	}
	return 1 / r
}

// LinkClass describes the links of one kind of machine: medians, spread
// lognormally (Spread and Jitter are the sigmas of the logarithms).
type LinkClass struct {
	Name     string
	Down, Up float64       // median bytes per second
	Spread   float64       // sigma of log bandwidth
	Latency  time.Duration // median one-way latency to the core
	Jitter   float64       // sigma of log latency
}

// Draw returns one machine's link.
func (k LinkClass) Draw(r *rand.Rand) Link {
	bw := math.Exp(k.Spread * r.NormFloat64())
	lat := math.Exp(k.Jitter * r.NormFloat64())
	return Link{Down: k.Down * bw, Up: k.Up * bw, Latency: time.Duration(float64(k.Latency) * lat)}
}

// Mbit is a bandwidth of one megabit per second, in bytes per second.
const Mbit = 1e6 / 8

// The link classes the simulator knows, after typical figures for fixed
// home broadband (cable and fibre), mobile networks (4G/5G) and cloud
// machines.
var (
	HomeLink       = LinkClass{Name: "home", Down: 100 * Mbit, Up: 20 * Mbit, Spread: 0.6, Latency: 15 * time.Millisecond, Jitter: 0.4}
	MobileLink     = LinkClass{Name: "mobile", Down: 40 * Mbit, Up: 10 * Mbit, Spread: 0.7, Latency: 35 * time.Millisecond, Jitter: 0.5}
	DatacenterLink = LinkClass{Name: "datacenter", Down: 1000 * Mbit, Up: 1000 * Mbit, Spread: 0.2, Latency: 5 * time.Millisecond, Jitter: 0.3}
)

// LinkClasses lists the classes by name.
var LinkClasses = map[string]LinkClass{"home": HomeLink, "mobile": MobileLink, "datacenter": DatacenterLink}

// LinkMix draws links from weighted classes.
type LinkMix []WeightedClass

// WeightedClass is a class of a mix and its share.
type WeightedClass struct {
	Class  LinkClass
	Weight float64
}

// LinkMixes are the named mixes: one class alone, or "planet", a mix of
// volunteers at home and on the move with a few cloud machines.
var LinkMixes = map[string]LinkMix{
	"home":       {{HomeLink, 1}},
	"mobile":     {{MobileLink, 1}},
	"datacenter": {{DatacenterLink, 1}},
	"planet":     {{HomeLink, 0.6}, {MobileLink, 0.25}, {DatacenterLink, 0.15}},
}

// ParseLinkMix returns a named mix, or a mix of classes written as
// "home:0.7,mobile:0.3".
func ParseLinkMix(s string) (LinkMix, error) {
	if m, ok := LinkMixes[s]; ok {
		return m, nil
	}
	var mix LinkMix
	for _, part := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), ":")
		k, known := LinkClasses[name]
		if !known {
			return nil, fmt.Errorf("unknown link class %q (want home, mobile, datacenter, or the mix planet)", name)
		}
		weight := 1.0
		if ok {
			if _, err := fmt.Sscanf(w, "%g", &weight); err != nil || !(weight > 0) {
				return nil, fmt.Errorf("link class %s: weight %q is not a positive number", name, w)
			}
		}
		mix = append(mix, WeightedClass{k, weight})
	}
	return mix, nil
}

// Draw returns one machine's link and its class.
func (m LinkMix) Draw(r *rand.Rand) (Link, string) {
	var total float64
	for _, c := range m {
		total += c.Weight
	}
	x := r.Float64() * total
	for _, c := range m {
		if x < c.Weight {
			return c.Class.Draw(r), c.Class.Name
		}
		x -= c.Weight
	}
	last := m[len(m)-1].Class
	return last.Draw(r), last.Name
}

// Network is the link model of a Cluster. Every machine has a Link; a
// message between two machines crosses the sender's uplink (a queue),
// Hops gossip hops, and the receiver's downlink (a queue):
//
//   - the sender uploads Fanout copies of its own message;
//   - the path takes the two machines' latencies, plus, for each hop
//     beyond the first, twice the mean latency and the time a relay with
//     the mean uplink takes to forward the message;
//   - a receiver takes gossip in at most its downlink rate and at most
//     the mean uplink of the network: in a gossip network every byte a
//     peer receives some peer relays, so the peers' uplinks bound what
//     they can all receive (the relaying itself is not queued on the
//     relays' uplinks);
//   - a receiver takes in Duplicates bytes of gossip for every byte of
//     the messages it needs (a gossip mesh delivers some messages more
//     than once);
//   - a fetch (a checkpoint, a residual) is a direct stream from one
//     holder, at the lesser of its uplink and the fetcher's downlink.
type Network struct {
	// Hops is how many gossip hops separate two peers; 0 derives it
	// from the size of the network (log base 8 of the machines, rounded,
	// at least 1).
	Hops int
	// Fanout is how many copies of its own message a publisher uploads
	// (0: 1; gossipsub sends one to each mesh peer, which relay it on).
	Fanout float64
	// Duplicates is the gossip amplification: the bytes a peer takes in
	// for each byte of the messages it needs (0: 1, every message once,
	// the floor). gossipsub's mesh delivers duplicates; IDONTWANT trims
	// them for large messages when it arrives in time.
	Duplicates float64
	// Default is the link of machines given none.
	Default Link
}

// netState is what the cluster tracks to apply a Network.
type netState struct {
	n          int
	sumLatency time.Duration
	sumUp      float64
	unlimited  int // machines with an unlimited uplink
}

func (s *netState) add(l Link) {
	s.n++
	s.sumLatency += l.Latency
	if l.Up <= 0 {
		s.unlimited++
	} else {
		s.sumUp += l.Up
	}
}

func (s *netState) meanLatency() time.Duration {
	if s.n == 0 {
		return 0
	}
	return s.sumLatency / time.Duration(s.n)
}

// meanUp is the mean uplink (0: unlimited, when every uplink is).
func (s *netState) meanUp() float64 {
	if s.n == s.unlimited {
		return 0
	}
	return s.sumUp / float64(s.n-s.unlimited)
}

func (net *Network) hops(machines int) int {
	if net.Hops > 0 {
		return net.Hops
	}
	if machines < 2 {
		return 1
	}
	return max(1, int(math.Round(math.Log(float64(machines))/math.Log(8))))
}

func (net *Network) duplicates() float64 {
	if net != nil && net.Duplicates > 1 {
		return net.Duplicates
	}
	return 1
}

func (net *Network) fanout() float64 {
	if net.Fanout > 0 {
		return net.Fanout
	}
	return 1
}

// envelope is the upper envelope of the lines u_k + S_k·x (x ≥ 0): the
// time a FIFO queue of rate 1/x finishes a batch of jobs arriving at u_k,
// S_k being the bytes of the jobs arriving at or after u_k. It answers a
// query in O(log n).
type envelope struct {
	lines []line // by increasing slope
	from  []float64
}

type line struct{ a, b float64 } // value a + b·x

func (l line) at(x float64) float64 { return l.a + l.b*x }

// newEnvelope builds the envelope of jobs (arrival, bytes).
func newEnvelope(arrive []float64, size []float64) *envelope {
	n := len(arrive)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return arrive[idx[i]] < arrive[idx[j]] })
	ls := make([]line, n)
	var suffix float64
	for k := n - 1; k >= 0; k-- {
		suffix += size[idx[k]]
		ls[k] = line{a: arrive[idx[k]], b: suffix}
	}
	// ls is by decreasing slope; add by increasing slope.
	slices.Reverse(ls)
	e := &envelope{}
	for _, l := range ls {
		for len(e.lines) > 0 {
			last := e.lines[len(e.lines)-1]
			if last.b == l.b {
				if last.a >= l.a {
					goto next
				}
				e.lines = e.lines[:len(e.lines)-1]
				e.from = e.from[:len(e.from)-1]
				continue
			}
			// x where l overtakes last.
			x := (last.a - l.a) / (l.b - last.b)
			if x <= e.from[len(e.from)-1] {
				e.lines = e.lines[:len(e.lines)-1]
				e.from = e.from[:len(e.from)-1]
				continue
			}
			e.lines = append(e.lines, l)
			e.from = append(e.from, x)
			goto next
		}
		e.lines = append(e.lines, l)
		e.from = append(e.from, math.Inf(-1))
	next:
	}
	return e
}

// max returns the envelope's value at x (−Inf when empty).
func (e *envelope) max(x float64) float64 {
	if len(e.lines) == 0 {
		return math.Inf(-1)
	}
	i := sort.SearchFloat64s(e.from, x)
	// from[i-1] < x <= from[i]: line i-1 is on top (ties either way).
	if i == 0 {
		i = 1
	}
	return e.lines[i-1].at(x)
}
