package p2p

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/p2p/internal/peerlog"
)

// ValidationResult is a topic Validator's verdict on a message.
type ValidationResult int

const (
	// Accept delivers the message and forwards it to other peers.
	Accept ValidationResult = iota
	// Reject drops the message and lowers the score of the peer that sent
	// it: the message is invalid, whoever asks.
	Reject
	// Ignore drops the message without penalty: it cannot be judged now
	// (a future step, an unknown base) or is not worth forwarding.
	Ignore
)

func (r ValidationResult) String() string {
	switch r {
	case Accept:
		return "accept"
	case Reject:
		return "reject"
	case Ignore:
		return "ignore"
	}
	return fmt.Sprintf("ValidationResult(%d)", int(r))
}

// A Validator judges one message received on a topic. from is the
// message's author, whose signature has been verified; msg is its payload,
// which the validator must not modify. The error explains a Reject or
// Ignore and is logged with the peer; it is ignored with Accept. With
// Accept, the validator may return a value (the message decoded, say),
// which the reader gets as Message.Value, so that a message is decoded
// and checked once. Validators run concurrently and must respect ctx: one
// that runs out of time ignores the message.
type Validator func(ctx context.Context, from peer.ID, msg []byte) (ValidationResult, any, error)

// Message is a message delivered on a topic.
type Message struct {
	// ID is the message's content identifier: the CID (CIDv1, raw,
	// sha2-256) of Data, which is also its gossip message ID.
	ID cid.Cid
	// From is the author, ReceivedFrom the peer that forwarded it.
	From, ReceivedFrom peer.ID
	Data               []byte
	// Value is what the topic's validator returned with Accept (nil
	// without a validator).
	Value any
}

// ErrMessageTooLarge is returned by Publish for a payload above the limit.
var ErrMessageTooLarge = errors.New("gossip: message exceeds the size limit")

// wireAllowance is what gossipsub's wire limit adds to the payload limit
// for the RPC framing around one message (topic, author, sequence number,
// signature, protobuf tags).
const wireAllowance = 64 << 10

// maxTopicLen bounds topic names.
const maxTopicLen = 256

// Gossip runs gossipsub on a host: strict message signing, message IDs
// that are content hashes, an explicit size limit, peer scoring, topic
// validators that call the caller's Validator, and a replay guard that
// outlasts gossipsub's own duplicate filter.
type Gossip struct {
	h      host.Host
	ps     *pubsub.PubSub
	opts   GossipOptions
	plog   *peerlog.Logger
	cancel context.CancelFunc
	replay *replayGuard
	// authors bounds the messages each author may have this host
	// validate and relay (GossipOptions.AuthorRate).
	authors *authorLimit

	mu     sync.Mutex
	closed bool
	topics map[string]*Topic
	scores map[peer.ID]float64

	stats gossipCounters
}

// GossipStats counts what a host's gossipsub received.
type GossipStats struct {
	// RPCs and Bytes count every RPC received (messages and control),
	// Bytes by encoded size without framing.
	RPCs, Bytes int64
	// Messages counts messages delivered to this host's topics.
	Messages int64
	// WireIn and WireOut count the bytes read from and written to
	// gossipsub's streams: everything gossip costs this host in each
	// direction, its own messages, relays and control included. They
	// draw from the host's bandwidth caps (Options.Blob's rates).
	WireIn, WireOut int64
}

type gossipCounters struct {
	rpcs, bytes, messages atomic.Int64
	wireIn, wireOut       atomic.Int64
}

// Stats returns the counts so far.
func (g *Gossip) Stats() GossipStats {
	return GossipStats{RPCs: g.stats.rpcs.Load(), Bytes: g.stats.bytes.Load(), Messages: g.stats.messages.Load(),
		WireIn: g.stats.wireIn.Load(), WireOut: g.stats.wireOut.Load()}
}

// NewGossip starts gossipsub on h. Start it before connecting to peers:
// peers connected earlier are picked up only slowly. Close stops it.
func NewGossip(h host.Host, opts GossipOptions, log *slog.Logger) (*Gossip, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gossip{
		h:       h,
		opts:    opts,
		plog:    peerlog.New(log, 5, 10*time.Second),
		cancel:  cancel,
		replay:  newReplayGuard(opts.ReplayWindow, opts.ReplayCacheSize),
		authors: newAuthorLimit(opts.AuthorRate, opts.AuthorBurst, opts.AuthorTable),
		topics:  make(map[string]*Topic),
		scores:  make(map[peer.ID]float64),
	}
	params := pubsub.DefaultGossipSubParams()
	params.HeartbeatInterval = opts.HeartbeatInterval
	psLog := log.With("component", "gossipsub")
	metered := &meteredHost{Host: h, ctx: ctx, up: opts.up, down: opts.down, in: &g.stats.wireIn, out: &g.stats.wireOut}
	ps, err := pubsub.NewGossipSub(ctx, metered,
		pubsub.WithGossipSubParams(params),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMessageIdFn(messageID),
		pubsub.WithMaxMessageSize(opts.MaxMessageSize+wireAllowance),
		pubsub.WithSeenMessagesTTL(opts.SeenTTL),
		pubsub.WithValidateQueueSize(256),
		pubsub.WithPeerScore(peerScoreParams(opts), peerScoreThresholds()),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(g.setScores), time.Second),
		pubsub.WithRawTracer(&wireTracer{plog: g.plog, seen: newPairSet(1 << 17), stats: &g.stats}),
		pubsub.WithAppSpecificRpcInspector(g.inspectRPC),
		pubsub.WithLogger(psLog),
		pubsub.WithRPCLogger(slog.New(&rpcLogHandler{plog: g.plog, next: psLog.Handler()})),
	)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start gossipsub: %w", err)
	}
	g.ps = ps
	return g, nil
}

// messageID is the sha2-256 digest of the payload: the same identity as
// the payload's CID.
func messageID(m *pb.Message) string {
	d := sha256.Sum256(m.Data)
	return string(d[:])
}

// Close leaves every topic and stops gossipsub.
func (g *Gossip) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	topics := make([]*Topic, 0, len(g.topics))
	for _, t := range g.topics {
		topics = append(topics, t)
	}
	g.mu.Unlock()
	for _, t := range topics {
		_ = t.Close()
	}
	g.cancel()
	return nil
}

// PeerScore returns p's gossipsub score as of the last second; negative
// scores come from invalid messages and misbehaviour.
func (g *Gossip) PeerScore(p peer.ID) float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.scores[p]
}

func (g *Gossip) setScores(s map[peer.ID]float64) {
	g.mu.Lock()
	g.scores = s
	g.mu.Unlock()
}

func (g *Gossip) joined(topic string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.topics[topic]
	return ok
}

// inspectRPC runs on every incoming RPC before gossipsub handles it; it
// logs messages for topics this host has not joined, which gossipsub drops
// without a word.
func (g *Gossip) inspectRPC(from peer.ID, rpc *pubsub.RPC) error {
	for _, m := range rpc.GetPublish() {
		if t := m.GetTopic(); !g.joined(t) {
			g.plog.Info(from, "gossip: ignored message", "topic not joined (unknown round)", "topic", clip(t, 80), "bytes", len(m.GetData()))
		}
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Join subscribes to topic, validating every message with v (nil accepts
// all that pass the built-in checks: signature, size, replay).
func (g *Gossip) Join(topic string, v Validator) (*Topic, error) {
	if topic == "" || len(topic) > maxTopicLen {
		return nil, fmt.Errorf("gossip: topic name of %d bytes outside [1, %d]", len(topic), maxTopicLen)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, errors.New("gossip: closed")
	}
	if _, ok := g.topics[topic]; ok {
		return nil, fmt.Errorf("gossip: topic %q already joined", topic)
	}
	if err := g.ps.RegisterTopicValidator(topic, g.validator(topic, v)); err != nil {
		return nil, fmt.Errorf("gossip: join %q: %w", topic, err)
	}
	pt, err := g.ps.Join(topic)
	if err != nil {
		_ = g.ps.UnregisterTopicValidator(topic)
		return nil, fmt.Errorf("gossip: join %q: %w", topic, err)
	}
	if err := pt.SetScoreParams(topicScoreParams()); err != nil {
		_ = pt.Close()
		_ = g.ps.UnregisterTopicValidator(topic)
		return nil, fmt.Errorf("gossip: join %q: %w", topic, err)
	}
	sub, err := pt.Subscribe(pubsub.WithBufferSize(256))
	if err != nil {
		_ = pt.Close()
		_ = g.ps.UnregisterTopicValidator(topic)
		return nil, fmt.Errorf("gossip: subscribe %q: %w", topic, err)
	}
	t := &Topic{g: g, name: topic, t: pt, sub: sub}
	g.topics[topic] = t
	return t, nil
}

// validator wraps v with the checks every message gets: size limit first,
// then the replay guard, then v under a deadline.
func (g *Gossip) validator(topic string, v Validator) pubsub.ValidatorEx {
	self := g.h.ID()
	return func(ctx context.Context, sender peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if sender == self {
			// Our own publication: checked by Publish.
			g.replay.add(messageID(m.Message), time.Now())
			return pubsub.ValidationAccept
		}
		author := m.GetFrom()
		if n := len(m.GetData()); n > g.opts.MaxMessageSize {
			g.plog.Warn(sender, "gossip: rejected message", fmt.Sprintf("%d bytes exceeds the %d-byte limit", n, g.opts.MaxMessageSize), "topic", topic, "author", author.String())
			return pubsub.ValidationReject
		}
		id := messageID(m.Message)
		now := time.Now()
		if g.replay.seen(id, now) {
			g.plog.Info(sender, "gossip: ignored message", "replay of a message accepted before", "topic", topic, "author", author.String(), "id", content.Sum(m.GetData()).String())
			return pubsub.ValidationIgnore
		}
		if !g.authors.allow(author, now) {
			g.plog.Info(sender, "gossip: ignored message", "its author is over its message rate", "topic", topic, "author", author.String())
			return pubsub.ValidationIgnore
		}
		if v == nil {
			g.replay.add(id, now)
			return pubsub.ValidationAccept
		}
		vctx, cancel := context.WithTimeout(ctx, g.opts.ValidatorTimeout)
		defer cancel()
		res, val, err := v(vctx, author, m.GetData())
		if res != Accept && vctx.Err() != nil && ctx.Err() == nil {
			g.plog.Info(sender, "gossip: ignored message", "validator timed out", "topic", topic, "author", author.String())
			return pubsub.ValidationIgnore
		}
		reason := "no reason given"
		if err != nil {
			reason = err.Error()
		}
		switch res {
		case Accept:
			g.replay.add(id, now)
			m.ValidatorData = val
			return pubsub.ValidationAccept
		case Reject:
			g.plog.Warn(sender, "gossip: rejected message", reason, "topic", topic, "author", author.String())
			return pubsub.ValidationReject
		case Ignore:
			g.plog.Debug(sender, "gossip: ignored message", reason, "topic", topic, "author", author.String())
			return pubsub.ValidationIgnore
		}
		g.plog.Warn(sender, "gossip: rejected message", fmt.Sprintf("validator returned %v", res), "topic", topic)
		return pubsub.ValidationReject
	}
}

// Topic is a joined gossip topic.
type Topic struct {
	g    *Gossip
	name string
	t    *pubsub.Topic
	sub  *pubsub.Subscription

	closeOnce sync.Once
}

// Name returns the topic's name.
func (t *Topic) Name() string { return t.name }

// Peers returns the peers known to be subscribed to the topic.
func (t *Topic) Peers() []peer.ID { return t.t.ListPeers() }

// Publish signs and sends data to the topic, first waiting (within ctx)
// until the host has at least MinMeshPeers mesh peers on it, since a
// message sent before the mesh forms can be lost. It returns the message's
// ID. Gossip is best effort: what the protocol cannot lose must also be
// fetchable by CID.
func (t *Topic) Publish(ctx context.Context, data []byte) (cid.Cid, error) {
	if len(data) > t.g.opts.MaxMessageSize {
		return cid.Undef, fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, len(data), t.g.opts.MaxMessageSize)
	}
	err := t.t.Publish(ctx, data, pubsub.WithReadiness(pubsub.MinTopicSize(t.g.opts.MinMeshPeers)))
	if err != nil {
		return cid.Undef, fmt.Errorf("gossip: publish on %q: %w", t.name, err)
	}
	return content.Sum(data), nil
}

// Next returns the next message on the topic from another peer (this
// host's own publications are skipped), blocking until one arrives, ctx
// ends or the topic is closed.
func (t *Topic) Next(ctx context.Context) (*Message, error) {
	self := t.g.h.ID()
	for {
		m, err := t.sub.Next(ctx)
		if err != nil {
			return nil, err
		}
		if m.ReceivedFrom == self {
			continue
		}
		return &Message{ID: content.Sum(m.Data), From: m.GetFrom(), ReceivedFrom: m.ReceivedFrom, Data: m.Data, Value: m.ValidatorData}, nil
	}
}

// Close leaves the topic.
func (t *Topic) Close() error {
	var err error
	t.closeOnce.Do(func() {
		t.sub.Cancel()
		_ = t.g.ps.UnregisterTopicValidator(t.name)
		// Close fails while the cancelled subscription is still being
		// removed by gossipsub's event loop; give it a moment.
		for range 50 {
			if err = t.t.Close(); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.g.mu.Lock()
		delete(t.g.topics, t.name)
		t.g.mu.Unlock()
	})
	return err
}

// wireTracer watches gossipsub's events: it counts received RPCs and
// delivered messages, and logs messages gossipsub itself rejects (bad or
// missing signatures, full queues) and messages a peer sends again after it
// has sent them once, which gossipsub drops as duplicates without a word.
// The topic validator logs its own verdicts.
type wireTracer struct {
	plog  *peerlog.Logger
	seen  *pairSet
	stats *gossipCounters
}

func (t *wireTracer) RecvRPC(rpc *pubsub.RPC) {
	t.stats.rpcs.Add(1)
	t.stats.bytes.Add(int64(proto.Size(&rpc.RPC)))
}

func (t *wireTracer) DeliverMessage(*pubsub.Message) { t.stats.messages.Add(1) }

func (t *wireTracer) RejectMessage(m *pubsub.Message, reason string) {
	switch reason {
	case pubsub.RejectValidationFailed, pubsub.RejectValidationIgnored:
		return
	}
	t.plog.Warn(m.ReceivedFrom, "gossip: rejected message", reason, "topic", clip(m.GetTopic(), 80))
}

// ValidateMessage sees each message's first arrival.
func (t *wireTracer) ValidateMessage(m *pubsub.Message) {
	t.seen.add(tracedID(m), m.ReceivedFrom)
}

// DuplicateMessage sees later arrivals. Arrivals from several peers are
// gossip's normal redundancy; the same peer sending the same message again
// is a replay.
func (t *wireTracer) DuplicateMessage(m *pubsub.Message) {
	if !t.seen.add(tracedID(m), m.ReceivedFrom) {
		t.plog.Info(m.ReceivedFrom, "gossip: ignored message", "replay: the peer sent this message before", "topic", clip(m.GetTopic(), 80), "id", content.Sum(m.GetData()).String())
	}
}

func tracedID(m *pubsub.Message) string {
	if m.ID != "" {
		return m.ID
	}
	return messageID(m.Message)
}

func (t *wireTracer) AddPeer(peer.ID, protocol.ID)                         {}
func (t *wireTracer) RemovePeer(peer.ID)                                   {}
func (t *wireTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (t *wireTracer) OnClosedOutboundStream(peer.ID)                       {}
func (t *wireTracer) Join(string)                                          {}
func (t *wireTracer) Leave(string)                                         {}
func (t *wireTracer) Graft(peer.ID, string)                                {}
func (t *wireTracer) Prune(peer.ID, string)                                {}
func (t *wireTracer) ThrottlePeer(peer.ID)                                 {}
func (t *wireTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (t *wireTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (t *wireTracer) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (t *wireTracer) UndeliverableMessage(*pubsub.Message)                 {}

// rpcLogHandler sits in front of gossipsub's wire-level logger. gossipsub
// reports an unreadable RPC stream (a frame over the size limit, bytes that
// are not protobuf) at debug level and resets the stream; this handler
// re-logs those as warnings naming the peer and the reason, rate-limited,
// and passes everything else on.
type rpcLogHandler struct {
	plog *peerlog.Logger
	next slog.Handler
}

func (h *rpcLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelDebug
}

func (h *rpcLogHandler) Handle(ctx context.Context, r slog.Record) error {
	switch {
	case r.Message == "error reading rpc", r.Message == "bogus rpc from",
		strings.HasPrefix(r.Message, "RPC's control message is too large"):
		var p peer.ID
		reason := strings.TrimSuffix(strings.SplitN(r.Message, ".", 2)[0], " from")
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "from", "peer":
				if id, ok := a.Value.Any().(peer.ID); ok {
					p = id
				} else if id, err := peer.Decode(a.Value.String()); err == nil {
					p = id
				}
			case "err":
				reason = a.Value.String()
			}
			return true
		})
		if ordinaryEnd(reason) {
			// A connection closing (a peer leaving, this host shutting
			// down) ends its streams too: nothing unreadable about it.
			h.plog.Debug(p, "gossip: RPC stream ended", reason)
			return nil
		}
		h.plog.Warn(p, "gossip: dropped unreadable RPC stream", reason)
		return nil
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// ordinaryEnd reports whether a stream error is a connection or stream
// going away rather than bad data.
func ordinaryEnd(reason string) bool {
	for _, s := range []string{"connection closed", "stream reset", "canceled by remote", "EOF", "use of closed", "connection reset", "timeout: no recent network activity"} {
		if strings.Contains(reason, s) {
			return true
		}
	}
	return false
}

func (h *rpcLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &rpcLogHandler{plog: h.plog, next: h.next.WithAttrs(as)}
}

func (h *rpcLogHandler) WithGroup(name string) slog.Handler {
	return &rpcLogHandler{plog: h.plog, next: h.next.WithGroup(name)}
}
