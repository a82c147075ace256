package p2p

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// gossipNet is n gossip nodes on a mocknet, each connected to about degree
// random others, all joined to one topic.
type gossipNet struct {
	mn     mocknet.Mocknet
	nodes  []*Gossip
	topics []*Topic
}

func newGossipNet(b *testing.B, n, degree int, latency time.Duration, seed uint64) *gossipNet {
	b.Helper()
	mn := newMocknet(b)
	mn.SetLinkDefaults(mocknet.LinkOptions{Latency: latency})
	gn := &gossipNet{mn: mn}
	for range n {
		h, err := mn.GenPeer()
		if err != nil {
			b.Fatal(err)
		}
		// Gossip starts before any connection (see DESIGN: connecting
		// first makes a large setup many times slower).
		g, err := NewGossip(h, GossipOptions{AllowColocation: true}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { g.Close() })
		tp, err := g.Join("bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		gn.nodes = append(gn.nodes, g)
		gn.topics = append(gn.topics, tp)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	ids := mn.Peers()
	for i, a := range ids {
		for range degree / 2 {
			j := rng.IntN(n - 1)
			if j >= i {
				j++
			}
			if len(mn.LinksBetweenPeers(a, ids[j])) > 0 {
				continue
			}
			if _, err := mn.LinkPeers(a, ids[j]); err != nil {
				b.Fatal(err)
			}
			if _, err := mn.ConnectPeers(a, ids[j]); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Wait for every node to see topic peers, then for meshes to form.
	deadline := time.Now().Add(2 * time.Minute)
	for _, tp := range gn.topics {
		for len(tp.Peers()) < 2 {
			if time.Now().After(deadline) {
				b.Fatalf("topic peers did not appear (seed %d)", seed)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(3 * time.Second)
	return gn
}

// arrivals counts deliveries of numbered messages across all topics.
type arrivals struct {
	want int
	mu   sync.Mutex
	got  map[uint64]int
	done map[uint64]chan struct{}
}

func (a *arrivals) wait(i uint64) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch, ok := a.done[i]
	if !ok {
		ch = make(chan struct{})
		a.done[i] = ch
	}
	return ch
}

func (a *arrivals) arrived(i uint64) {
	ch := a.wait(i)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got[i]++
	if a.got[i] == a.want {
		close(ch)
	}
}

// readAll starts one reader per topic, counting numbered messages, and
// returns a function that stops and joins them.
func (gn *gossipNet) readAll(a *arrivals) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, tp := range gn.topics {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := tp.Next(ctx)
				if err != nil {
					return
				}
				a.arrived(binary.BigEndian.Uint64(m.Data))
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// BenchmarkGossipDelivery500 measures the time for a 1 KiB message to reach
// all of 500 in-memory hosts (each connected to about 8 others) over links
// with 50 ms latency. Metrics: ms until the last host has the message, and
// the median over iterations.
func BenchmarkGossipDelivery500(b *testing.B) {
	const n = 500
	gn := newGossipNet(b, n, 8, 50*time.Millisecond, 1)
	a := &arrivals{want: n - 1, got: make(map[uint64]int), done: make(map[uint64]chan struct{})}
	stop := gn.readAll(a)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	payload := make([]byte, 1024)
	var times []time.Duration
	var seq uint64
	b.ResetTimer()
	for b.Loop() {
		seq++
		binary.BigEndian.PutUint64(payload, seq)
		from := gn.topics[int(seq)%n]
		done := a.wait(seq)
		start := time.Now()
		if _, err := from.Publish(ctx, payload); err != nil {
			b.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(time.Minute):
			a.mu.Lock()
			got := a.got[seq]
			a.mu.Unlock()
			b.Fatalf("message %d reached %d of %d hosts in a minute", seq, got, n-1)
		}
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	var total time.Duration
	for _, d := range times {
		total += d
	}
	slices.Sort(times)
	b.ReportMetric(float64(total.Milliseconds())/float64(len(times)), "ms/all-delivered")
	b.ReportMetric(float64(times[len(times)/2].Milliseconds()), "ms-median")
	b.ReportMetric(float64(times[len(times)-1].Milliseconds()), "ms-max")
}

// BenchmarkGossipAmplification measures gossip's bandwidth amplification
// on 50 in-memory hosts (each connected to about 10 others): the bytes each
// host receives (messages and control, all RPCs) per byte published.
// 1 is the floor (every host receives each message once); gossipsub's mesh
// sends duplicates, which IDONTWANT trims for messages of 1 KiB and more.
func BenchmarkGossipAmplification(b *testing.B) {
	const n = 50
	for _, size := range []int{256, 4 << 10, 64 << 10, 512 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			gn := newGossipNet(b, n, 10, 0, 2)
			a := &arrivals{want: n - 1, got: make(map[uint64]int), done: make(map[uint64]chan struct{})}
			stop := gn.readAll(a)
			defer stop()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			before := gn.received()
			payload := make([]byte, size)
			var seq uint64
			for b.Loop() {
				seq++
				binary.BigEndian.PutUint64(payload, seq)
				done := a.wait(seq)
				if _, err := gn.topics[int(seq)%n].Publish(ctx, payload); err != nil {
					b.Fatal(err)
				}
				select {
				case <-done:
				case <-time.After(time.Minute):
					b.Fatalf("message %d not delivered to all", seq)
				}
			}
			// Let duplicates in flight arrive before counting.
			time.Sleep(200 * time.Millisecond)
			recv := gn.received() - before
			published := float64(seq) * float64(size)
			b.ReportMetric(float64(recv)/float64(n-1)/published, "recv-bytes/peer/published-byte")
		})
	}
}

func (gn *gossipNet) received() int64 {
	var total int64
	for _, g := range gn.nodes {
		total += g.Stats().Bytes
	}
	return total
}
