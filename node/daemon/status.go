package daemon

import (
	"sync"
	"time"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker/wire"
)

// Status is what a node daemon reports about itself: on its status page,
// in `shoal node` log lines and the terminal's status line.
type Status struct {
	Role    string    `json:"role"`
	Peer    string    `json:"peer"`
	Round   string    `json:"round"`
	Started time.Time `json:"started"`
	Step    uint64    `json:"step"` // the step the node is at (it holds C_Step)
	Head    string    `json:"head"`
	Units   int       `json:"units"`   // work units trained
	Samples int64     `json:"samples"` // their samples
	// Verified is the samples of those units that another replica's
	// update confirmed, as far as this node has seen: the credit the
	// round gives for its work.
	Verified  int64   `json:"verified"`
	LastUnit  string  `json:"last_unit,omitempty"`
	TrainLoss float64 `json:"train_loss,omitempty"` // of the last unit
	EvalLoss  float64 `json:"eval_loss,omitempty"`  // held-out loss of C_EvalStep (observers)
	EvalStep  uint64  `json:"eval_step,omitempty"`
	Peers     int     `json:"peers"`     // peers on the round's topic
	BytesIn   int64   `json:"bytes_in"`  // protocol message bytes received
	BytesOut  int64   `json:"bytes_out"` // and published
	BlobIn    int64   `json:"blob_in"`   // content bytes fetched from peers
	BlobOut   int64   `json:"blob_out"`  // content bytes served to peers
	Refused   int64   `json:"refused"`   // messages refused by the state machine
	Events    []Event `json:"events"`    // recent events, newest last
	// GossipIn and GossipOut are what gossip cost on the wire, relays and
	// control included (within the bandwidth caps, which they share with
	// blobs).
	GossipIn  int64 `json:"gossip_in"`
	GossipOut int64 `json:"gossip_out"`
	// Disk is the bytes the checkpoints take on disk, counted for the
	// disk cap (0 without one); DiskFull, while the disk is full or the
	// cap reached with nothing to evict, says why (work pauses, retried
	// with a backoff).
	Disk     int64  `json:"disk,omitempty"`
	DiskFull string `json:"disk_full,omitempty"`
}

// Event is one of a node's recent events.
type Event struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Step   uint64    `json:"step"`
	Detail string    `json:"detail"`
}

const keepEvents = 50

type statusBox struct {
	mu sync.Mutex
	st Status
}

func newStatusBox() *statusBox {
	return &statusBox{st: Status{Started: time.Now().UTC()}}
}

func (b *statusBox) get() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.st
	st.Events = append([]Event(nil), b.st.Events...)
	return st
}

func (b *statusBox) update(f func(*Status)) {
	b.mu.Lock()
	f(&b.st)
	b.mu.Unlock()
}

func (b *statusBox) event(ev node.Event) {
	if ev.Kind == wire.EventTrain {
		return
	}
	b.update(func(st *Status) {
		st.Events = append(st.Events, Event{At: time.Now().UTC(), Kind: string(ev.Kind), Step: ev.Step, Detail: ev.Detail})
		if len(st.Events) > keepEvents {
			st.Events = st.Events[len(st.Events)-keepEvents:]
		}
	})
}
