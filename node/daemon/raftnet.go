package daemon

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The raft transport of a tracker group: raft's messages travel over
// libp2p streams between the group's members, one stream per direction
// and pair, each message a uvarint length and the message in protobuf.
// A stream is accepted only from a member of the group (libp2p
// authenticates the peer ID), and a message only if raft's sender is
// that member's raft ID.

// raftProtocol returns the stream protocol of a round's group.
func raftProtocol(round string) protocol.ID { return protocol.ID("/shoal/raft/1/" + round) }

// maxRaftMessage bounds a raft message (a snapshot of the tracker rides
// in one).
const maxRaftMessage = 256 << 20

// raftQueue is how many messages wait for a member before more are
// dropped (raft sends them again).
const raftQueue = 4096

type raftReport struct {
	to       uint64
	snapshot bool // a MsgSnap's outcome, else unreachable
	ok       bool
}

type raftNet struct {
	h     host.Host
	proto protocol.ID
	log   *slog.Logger

	mu      sync.Mutex
	members map[uint64]peer.ID // the other members
	queues  map[uint64]chan *raftpb.Message

	in      chan *raftpb.Message
	reports chan raftReport
	ctx     context.Context
	wg      sync.WaitGroup
}

// newRaftNet starts the transport: members names the group's members,
// raft ID → peer (this host among them or not). Close stops it.
func newRaftNet(ctx context.Context, h host.Host, round string, members map[uint64]peer.ID, log *slog.Logger) *raftNet {
	n := &raftNet{h: h, proto: raftProtocol(round), log: log, members: map[uint64]peer.ID{}, queues: map[uint64]chan *raftpb.Message{},
		in: make(chan *raftpb.Message, raftQueue), reports: make(chan raftReport, raftQueue), ctx: ctx}
	n.setMembers(members)
	h.SetStreamHandler(n.proto, n.serve)
	return n
}

// setMembers replaces the members (after a configuration change): a
// member no longer in the group is sent nothing more.
func (n *raftNet) setMembers(members map[uint64]peer.ID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.members = map[uint64]peer.ID{}
	for id, p := range members {
		if p != n.h.ID() {
			n.members[id] = p
		}
	}
	for id, q := range n.queues {
		if _, ok := n.members[id]; !ok {
			close(q)
			delete(n.queues, id)
		}
	}
}

// Close stops the transport and waits for its goroutines.
func (n *raftNet) Close() {
	n.h.RemoveStreamHandler(n.proto)
	n.mu.Lock()
	for id, q := range n.queues {
		close(q)
		delete(n.queues, id)
	}
	n.mu.Unlock()
	n.wg.Wait()
}

// speaksAs reports whether p may send raft messages from raft ID id:
// it is that member.
func (n *raftNet) speaksAs(p peer.ID, id uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.members[id] == p
}

// isMember reports whether p is a member under some raft ID.
func (n *raftNet) isMember(p peer.ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, q := range n.members {
		if q == p {
			return true
		}
	}
	return false
}

// serve reads a member's messages.
func (n *raftNet) serve(s network.Stream) {
	defer s.Close()
	remote := s.Conn().RemotePeer()
	if !n.isMember(remote) {
		s.Reset()
		return
	}
	r := bufio.NewReader(s)
	for {
		size, err := binary.ReadUvarint(r)
		if err != nil {
			return
		}
		if size == 0 || size > maxRaftMessage {
			n.log.Warn("raft message of a bad size; closing the stream", "peer", s.Conn().RemotePeer().String(), "size", size)
			s.Reset()
			return
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(r, b); err != nil {
			return
		}
		m := &raftpb.Message{}
		if err := proto.Unmarshal(b, m); err != nil || !n.speaksAs(remote, m.GetFrom()) {
			n.log.Warn("raft message refused; closing the stream", "peer", s.Conn().RemotePeer().String(), "err", err, "from", m.GetFrom())
			s.Reset()
			return
		}
		select {
		case n.in <- m:
		case <-n.ctx.Done():
			return
		}
	}
}

// send queues messages for their members; it does not block. send and
// setMembers are called from one goroutine, the driver's.
func (n *raftNet) send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		to := m.GetTo()
		n.mu.Lock()
		p, ok := n.members[to]
		q := n.queues[to]
		if ok && q == nil {
			q = make(chan *raftpb.Message, raftQueue)
			n.queues[to] = q
			n.wg.Add(1)
			go n.sender(to, p, q)
		}
		n.mu.Unlock()
		if !ok {
			n.report(raftReport{to: to, snapshot: m.GetType() == raftpb.MsgSnap})
			continue
		}
		select {
		case q <- m:
		default:
			n.report(raftReport{to: to, snapshot: m.GetType() == raftpb.MsgSnap})
		}
	}
}

func (n *raftNet) report(r raftReport) {
	select {
	case n.reports <- r:
	default:
	}
}

// sender writes the messages queued for one member on one stream, opened
// again after a failure; a message it could not send is dropped and
// reported (raft sends again).
func (n *raftNet) sender(to uint64, p peer.ID, q chan *raftpb.Message) {
	defer n.wg.Done()
	var s network.Stream
	var w *bufio.Writer
	defer func() {
		if s != nil {
			s.Close()
		}
	}()
	for m := range q {
		snap := m.GetType() == raftpb.MsgSnap
		b, err := proto.Marshal(m)
		if err != nil {
			n.report(raftReport{to: to, snapshot: snap})
			continue
		}
		if s == nil {
			ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			s, err = n.h.NewStream(network.WithAllowLimitedConn(ctx, "raft"), p, n.proto)
			cancel()
			if err != nil {
				s = nil
				n.report(raftReport{to: to, snapshot: snap})
				continue
			}
			w = bufio.NewWriter(s)
		}
		s.SetWriteDeadline(time.Now().Add(30 * time.Second))
		var hdr [binary.MaxVarintLen64]byte
		_, err = w.Write(hdr[:binary.PutUvarint(hdr[:], uint64(len(b)))])
		if err == nil {
			_, err = w.Write(b)
		}
		if err == nil && len(q) == 0 {
			err = w.Flush()
		}
		if err != nil {
			s.Reset()
			s = nil
			n.report(raftReport{to: to, snapshot: snap})
			continue
		}
		if snap {
			if err := w.Flush(); err != nil {
				s.Reset()
				s = nil
				n.report(raftReport{to: to, snapshot: true})
				continue
			}
			n.report(raftReport{to: to, snapshot: true, ok: true})
		}
	}
}

// String names the transport for logs.
func (n *raftNet) String() string { return fmt.Sprintf("raft transport %s", n.proto) }
