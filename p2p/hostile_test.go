package p2p

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/p2p/blob"
	"github.com/shoal-network/shoal/p2p/internal/testlog"
)

// rawPeer is an attacker: a bare libp2p host that speaks gossipsub's wire
// format by hand, so it can send what an honest gossipsub never would.
type rawPeer struct {
	t   testing.TB
	h   host.Host
	key crypto.PrivKey
	seq uint64
	s   network.Stream
}

func newRawPeer(t testing.TB) *rawPeer {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.ResourceManager(&network.NullResourceManager{}),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	// Accept the victim's gossipsub streams and discard what it sends, so
	// that it takes this host for a gossipsub peer.
	for _, id := range []protocol.ID{pubsub.GossipSubID_v11, pubsub.GossipSubID_v12, pubsub.GossipSubID_v13} {
		h.SetStreamHandler(id, func(s network.Stream) {
			_, _ = io.Copy(io.Discard, s)
			_ = s.Reset()
		})
	}
	return &rawPeer{t: t, h: h, key: key}
}

// dial connects to the victim and opens a gossipsub stream to it.
func (r *rawPeer) dial(ctx context.Context, victim *Host) {
	r.t.Helper()
	if err := r.h.Connect(ctx, victim.AddrInfo()); err != nil {
		r.t.Fatal(err)
	}
	s, err := r.h.NewStream(ctx, victim.ID(), pubsub.GossipSubID_v11)
	if err != nil {
		r.t.Fatal(err)
	}
	r.s = s
}

// message builds a message on topic signed by the attacker.
func (r *rawPeer) message(topic string, data []byte) *pb.Message {
	r.seq++
	seqno := binary.BigEndian.AppendUint64(nil, r.seq)
	m := &pb.Message{From: []byte(r.h.ID()), Data: data, Seqno: seqno, Topic: proto.String(topic)}
	b, err := proto.Marshal(m)
	if err != nil {
		r.t.Fatal(err)
	}
	m.Signature, err = r.key.Sign(append([]byte(pubsub.SignPrefix), b...))
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

// send writes one length-prefixed RPC.
func (r *rawPeer) send(rpc *pb.RPC) {
	r.t.Helper()
	b, err := proto.Marshal(rpc)
	if err != nil {
		r.t.Fatal(err)
	}
	r.sendFrame(binary.AppendUvarint(nil, uint64(len(b))), b)
}

func (r *rawPeer) sendFrame(parts ...[]byte) {
	r.t.Helper()
	for _, p := range parts {
		if _, err := r.s.Write(p); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *rawPeer) publish(msgs ...*pb.Message) {
	r.t.Helper()
	r.send(&pb.RPC{Publish: msgs})
}

// TestHostileGossipAndRequests is acceptance test 3: oversized messages,
// garbage, unknown rounds, replays, forged signatures, unreadable frames
// and absurd blob requests are each rejected or ignored with a log line
// naming the peer and the reason, and the host keeps serving honest peers.
func TestHostileGossipAndRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic = "round/r-hostile/updates"
	const limit = 64 << 10
	rec := &testlog.Recorder{}
	vo := loopbackOptions(rec, "tcp")
	vo.Gossip.MaxMessageSize = limit
	victim := newHost(t, vo)
	validator := func(_ context.Context, _ peer.ID, msg []byte) (ValidationResult, any, error) {
		if !bytes.HasPrefix(msg, []byte("update:")) {
			return Reject, nil, errors.New("not an update")
		}
		return Accept, nil, nil
	}
	vt, err := victim.Gossip().Join(topic, validator)
	if err != nil {
		t.Fatal(err)
	}
	ho := loopbackOptions(nil, "tcp")
	ho.Gossip.MaxMessageSize = limit
	ho.Bootstrap = []peer.AddrInfo{victim.AddrInfo()}
	honest := newHost(t, ho)
	ht, err := honest.Gossip().Join(topic, validator)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ht.Publish(ctx, []byte("update: hello")); err != nil {
		t.Fatal(err)
	}
	if m, err := vt.Next(ctx); err != nil || string(m.Data) != "update: hello" {
		t.Fatalf("honest message: %v %v", m, err)
	}

	// Each case uses its own attacker, so one attacker's falling score
	// does not mask the next case.
	cases := []struct {
		name   string
		attack func(a *rawPeer)
		want   []string // substrings of the expected log line
	}{
		{"message over the size limit", func(a *rawPeer) {
			a.publish(a.message(topic, append([]byte("update:"), make([]byte, limit)...)))
		}, []string{"rejected message", "exceeds the 65536-byte limit"}},
		{"garbage payload", func(a *rawPeer) {
			junk := make([]byte, 300)
			rand.Read(junk)
			a.publish(a.message(topic, junk))
		}, []string{"rejected message", "not an update"}},
		{"unknown round", func(a *rawPeer) {
			a.publish(a.message("round/no-such-round/updates", []byte("update: x")))
		}, []string{"ignored message", "unknown round", "no-such-round"}},
		{"forged signature", func(a *rawPeer) {
			m := a.message(topic, []byte("update: signed"))
			m.Data = []byte("update: tampered")
			a.publish(m)
		}, []string{"rejected message", "invalid signature"}},
		{"unsigned", func(a *rawPeer) {
			m := a.message(topic, []byte("update: unsigned"))
			m.Signature = nil
			a.publish(m)
		}, []string{"rejected message", "missing signature"}},
		{"garbage frame", func(a *rawPeer) {
			junk := []byte("\xff\xff\xff this is not protobuf \x00\x01")
			a.sendFrame(binary.AppendUvarint(nil, uint64(len(junk))), junk)
		}, []string{"dropped unreadable RPC stream"}},
		{"frame over the wire limit", func(a *rawPeer) {
			a.sendFrame(binary.AppendUvarint(nil, 1<<30), make([]byte, 1024))
		}, []string{"dropped unreadable RPC stream", "too large"}},
		{"replayed message", func(a *rawPeer) {
			m := a.message(topic, []byte("update: replayed"))
			a.publish(m)
			got, err := vt.Next(ctx)
			if err != nil || string(got.Data) != "update: replayed" {
				t.Fatalf("original of the replay: %v %v", got, err)
			}
			a.publish(m)
		}, []string{"ignored message", "replay"}},
		{"blob request for an absurd size", func(a *rawPeer) {
			s, err := a.h.NewStream(ctx, victim.ID(), blob.ProtocolID)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			c := content.Sum([]byte("x")).Bytes()
			req := append([]byte{1, 1, byte(len(c))}, c...)
			req = binary.AppendUvarint(req, 1<<62)
			s.Write(req)
			st, _ := bufio.NewReader(s).ReadByte()
			if blob.Status(st) != blob.StatusBadRequest {
				t.Errorf("absurd request answered %v", blob.Status(st))
			}
		}, []string{"rejected request", "absurd size"}},
		{"blob request of garbage", func(a *rawPeer) {
			s, err := a.h.NewStream(ctx, victim.ID(), blob.ProtocolID)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.Write([]byte("GET /checkpoint HTTP/1.1\r\n\r\n"))
			io.Copy(io.Discard, s)
		}, []string{"rejected request", "unknown version"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newRawPeer(t)
			a.dial(ctx, victim)
			a.send(&pb.RPC{Subscriptions: []*pb.RPC_SubOpts{{Subscribe: proto.Bool(true), Topicid: proto.String(topic)}}})
			tc.attack(a)
			want := append([]string{"peer=" + a.h.ID().String()}, tc.want...)
			deadline := time.Now().Add(5 * time.Second)
			for {
				if _, ok := rec.Find(want...); ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no log line with %s:\n%s", strings.Join(want, ", "), rec)
				}
				time.Sleep(20 * time.Millisecond)
			}
			line, _ := rec.Find(want...)
			t.Log(line)
		})
	}
	// Nothing hostile was delivered.
	short, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	if m, err := vt.Next(short); err == nil {
		t.Fatalf("hostile message delivered: %q", clip(string(m.Data), 40))
	}
	// The victim still serves the honest peer: gossip both ways and a blob.
	if _, err := ht.Publish(ctx, []byte("update: still here")); err != nil {
		t.Fatal(err)
	}
	if m, err := vt.Next(ctx); err != nil || string(m.Data) != "update: still here" {
		t.Fatalf("honest message after the attacks: %v %v", m, err)
	}
	root, err := victim.PutBlob(ctx, bytes.Repeat([]byte("chunk"), 1<<18), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := honest.FetchBlob(ctx, root, victim.ID()); err != nil {
		t.Fatalf("blob fetch after the attacks: %v", err)
	}
}
