package p2p

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
)

// Reachability is the result of the host's reachability self-test
// (AutoNAT: other peers try to dial it back).
type Reachability struct {
	State network.Reachability
}

// String says in plain words what the self-test found.
func (r Reachability) String() string {
	switch r.State {
	case network.ReachabilityPublic:
		return "reachable: other peers can connect to this computer directly"
	case network.ReachabilityPrivate:
		return "not directly reachable (behind a router or firewall): this computer connects out to peers and is reached through relays and hole punching; forwarding the listen port on the router would let peers connect directly"
	}
	return "reachability not known yet: this computer has not been tested by other peers (normal in the first minutes, and on a local network)"
}

// reachabilityWatcher follows the host's reachability events.
type reachabilityWatcher struct {
	sub event.Subscription
	wg  sync.WaitGroup

	mu    sync.Mutex
	state network.Reachability
}

func watchReachability(h host.Host) (*reachabilityWatcher, error) {
	sub, err := h.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		return nil, err
	}
	w := &reachabilityWatcher{sub: sub}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for e := range sub.Out() {
			ev := e.(event.EvtLocalReachabilityChanged)
			w.mu.Lock()
			w.state = ev.Reachability
			w.mu.Unlock()
		}
	}()
	return w, nil
}

func (w *reachabilityWatcher) get() Reachability {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Reachability{State: w.state}
}

func (w *reachabilityWatcher) close() {
	_ = w.sub.Close()
	w.wg.Wait()
}
