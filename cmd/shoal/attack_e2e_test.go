package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/node/daemon"
	"github.com/shoal-network/shoal/tracker/boltstore"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// attacker is the hostile side of TestOpenInternetAttacks: a bare libp2p
// host running gossipsub on a round's topic that signs what it publishes
// with keys of its choosing, so one connection speaks for any number of
// peer IDs. It reads the round's Opens and Closes to time its attacks.
type attacker struct {
	h     host.Host
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	seq   atomic.Uint64

	mu     sync.Mutex
	opens  []*wire.Open
	closes []*wire.Close
	sent   atomic.Int64 // bytes published
}

func newAttacker(ctx context.Context, t *testing.T, roundID cid.Cid) *attacker {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMessageIdFn(func(m *pb.Message) string { d := sha256.Sum256(m.Data); return string(d[:]) }),
		pubsub.WithMaxMessageSize(2<<20))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(daemon.TopicName(roundID))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	a := &attacker{h: h, topic: topic, sub: sub}
	a.seq.Store(uint64(time.Now().UnixNano()))
	go a.watch(ctx)
	return a
}

// watch keeps the Opens and Closes the attacker hears.
func (a *attacker) watch(ctx context.Context) {
	for {
		m, err := a.sub.Next(ctx)
		if err != nil {
			return
		}
		msg, err := unseal(m.Data)
		if err != nil {
			continue
		}
		a.mu.Lock()
		switch msg := msg.(type) {
		case *wire.Open:
			a.opens = append(a.opens, msg)
		case *wire.Close:
			a.closes = append(a.closes, msg)
		}
		a.mu.Unlock()
	}
}

// heard returns the Opens and Closes heard since the given counts.
func (a *attacker) heard(opens, closes int) ([]*wire.Open, []*wire.Close) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*wire.Open(nil), a.opens[opens:]...), append([]*wire.Close(nil), a.closes[closes:]...)
}

// publish signs m's envelope with key and publishes it.
func (a *attacker) publish(ctx context.Context, key crypto.PrivKey, m wire.Msg) error {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return err
	}
	body, err := wire.Marshal(m)
	if err != nil {
		return err
	}
	data := seal(id.String(), a.seq.Add(1), body)
	a.sent.Add(int64(len(data)))
	return a.topic.Publish(ctx, data, pubsub.WithSecretKeyAndPeerId(key, id))
}

// seal and unseal are the daemon's gossip envelope (node/daemon's
// envelope.go): version 1, the author's peer ID with its length, a
// sequence number, the wire message.
func seal(author string, seq uint64, msg []byte) []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, uint64(len(author)))
	b = append(b, author...)
	b = binary.AppendUvarint(b, seq)
	return append(b, msg...)
}

func unseal(b []byte) (wire.Msg, error) {
	if len(b) < 1 || b[0] != 1 {
		return nil, fmt.Errorf("not an envelope")
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, fmt.Errorf("bad author")
	}
	b = b[k+int(n):]
	_, k = binary.Uvarint(b)
	if k <= 0 {
		return nil, fmt.Errorf("bad sequence number")
	}
	return wire.Unmarshal(b[k:])
}

func randomCID() cid.Cid {
	b := make([]byte, 32)
	rand.Read(b)
	return content.Sum(b)
}

func newKey(t *testing.T) crypto.PrivKey {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestOpenInternetAttacks runs a round as separate processes on
// 127.0.0.1 (a tracker with its observer, three honest volunteers) and
// attacks it from the test process at once:
//
//   - a Sybil swarm: 1,000 keys saying Hello through one libp2p host, a
//     fifth of them as observers that commit an attacker-chosen CID for
//     every step;
//   - a withholder: a member that sends an Update for every unit copy it
//     is dealt, naming a payload CID it never serves;
//   - a junk flooder, connected only to one honest node (the relay, run
//     with --max-upload and --max-download), publishing Updates of units
//     not dealt to it with large inline junk, as fast as gossip takes them.
//
// The round must keep finalising, never finalise the attacker's CID, and
// the honest nodes must end on the checkpoints the tracker finalised; the
// relay's traffic (gossip and content) must stay within its caps.
func TestOpenInternetAttacks(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: runs several processes for a few minutes")
	}
	dir := t.TempDir()
	e := &e2e{t: t, dir: dir, bin: buildShoal(t, dir, "")}
	defer e.stopAll()

	tdir := filepath.Join(dir, "tracker")
	tmpl, err := exec.Command(e.bin, "round", "init", "--data-dir", tdir).Output()
	if err != nil {
		t.Fatalf("round init: %v", err)
	}
	spec := string(tmpl)
	for _, r := range [][2]string{
		{"inner_steps: 50 ", "inner_steps: 10 "},
		{"target_samples: 3200 ", "target_samples: 800 "},
		{"deadline: 2m ", "deadline: 20s "},
		{"codec: topk:chunk=4096,k=64,values=2bit ", "codec: int8 "},
	} {
		if !strings.Contains(spec, r[0]) {
			t.Fatalf("the template has no %q", r[0])
		}
		spec = strings.Replace(spec, r[0], r[1], 1)
	}
	specPath := filepath.Join(dir, "round.yaml")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	parsed, err := round.Parse([]byte(spec), specPath)
	if err != nil {
		t.Fatal(err)
	}
	roundID := parsed.ID()

	tr := e.start("tracker", e.bin, nil, "round", "start", "--loopback", "--data-dir", tdir, "--dashboard-addr", "127.0.0.1:0",
		"--min-members", "3", specPath)
	dash := tr.find(t, reDashboard, 30*time.Second)
	var invite string
	for end := time.Now().Add(10 * time.Second); invite == "" && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		invite = strings.TrimSpace(tr.out.String())
	}
	inv, err := daemon.ParseInvite(invite)
	if err != nil {
		t.Fatalf("invite %q: %v", invite, err)
	}

	// The relay's caps: room for the round's own traffic, far less than
	// the flood.
	const up, down = 2 << 20, 2 << 20
	relayPort := freePort(t)
	status := map[string]string{}
	names := []string{"relay", "node2", "node3"}
	for _, name := range names {
		args := []string{"node", "join", "--loopback", "--cpus", "1", "--data-dir", filepath.Join(dir, name), "--status-addr", "127.0.0.1:0"}
		if name == "relay" {
			args = append(args, "--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", relayPort),
				"--max-upload", fmt.Sprint(up), "--max-download", fmt.Sprint(down))
		}
		p := e.start(name, e.bin, nil, append(args, invite)...)
		status[name] = p.find(t, reStatus, 60*time.Second)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	snapStep := func() uint64 {
		s, err := getSnapshot(dash)
		if err != nil {
			return 0
		}
		return s.Step
	}
	waitStep := func(n uint64, what string) {
		t.Helper()
		err := daemon.WaitFor(ctx, 200*time.Millisecond, func() bool { return snapStep() >= n })
		if err != nil {
			t.Fatalf("%s: the round did not reach step %d (at %d): %v\ntracker stderr tail:\n%s", what, n, snapStep(), err, tailLines(tr.lines(), 30))
		}
	}
	waitStep(2, "warm-up")

	// The attackers connect: the swarm's host to the tracker and the
	// honest nodes (through the tracker's discovery), the flooder to the
	// relay only.
	swarm := newAttacker(ctx, t, roundID)
	for _, ai := range inv.Peers {
		if err := swarm.h.Connect(ctx, ai); err != nil {
			t.Fatalf("the swarm cannot reach the tracker: %v", err)
		}
	}
	relaySt, err := getNodeStatus(status["relay"])
	if err != nil {
		t.Fatal(err)
	}
	relayID, err := peer.Decode(relaySt.Peer)
	if err != nil {
		t.Fatal(err)
	}
	flooder := newAttacker(ctx, t, roundID)
	relayAddr := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", relayPort))
	if err := flooder.h.Connect(ctx, peer.AddrInfo{ID: relayID, Addrs: []ma.Multiaddr{relayAddr}}); err != nil {
		t.Fatalf("the flooder cannot reach the relay: %v", err)
	}
	err = daemon.WaitFor(ctx, 50*time.Millisecond, func() bool {
		return len(swarm.topic.ListPeers()) > 0 && len(flooder.topic.ListPeers()) > 0
	})
	if err != nil {
		t.Fatalf("the attackers never saw the round's topic: %v", err)
	}
	attackStart := snapStep()
	t.Logf("attacking from step %d", attackStart)

	evil := randomCID() // the checkpoint the Sybil observers vote for
	const sybils, observers = 1000, 200
	keys := make([]crypto.PrivKey, sybils)
	for i := range keys {
		keys[i] = newKey(t)
	}
	withholder := newKey(t)
	withholderID, _ := peer.IDFromPrivateKey(withholder)
	flood := newKey(t)

	// SHOAL_OPEN_INTERNET_ATTACKS picks some of the attacks (a, b, c) to
	// tell which one a failure comes from; all three by default.
	which := os.Getenv("SHOAL_OPEN_INTERNET_ATTACKS")
	if which == "" {
		which = "abc"
	}
	actx, stopAttacks := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopAttacks(); wg.Wait() }()

	// (a) The Sybil swarm says Hello, then the observers among it commit
	// the attacker's CID for every step opened or closed.
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !strings.ContainsAny(which, "ab") {
			return
		}
		hello := func(i int) {
			role := wire.RoleWorker
			if i < observers {
				role = wire.RoleObserver
			}
			swarm.publish(actx, keys[i], &wire.Hello{Round: roundID, Role: role})
		}
		// Every peer's Hello is also its heartbeat: the swarm says it
		// again every heartbeat interval, to stay live members.
		var lastHello time.Time
		seenO, seenC := 0, 0
		for actx.Err() == nil {
			if time.Since(lastHello) >= round.HeartbeatInterval(parsed) {
				lastHello = time.Now()
				for i := range keys {
					if !strings.Contains(which, "a") || actx.Err() != nil {
						break
					}
					hello(i)
					if i%10 == 9 {
						time.Sleep(10 * time.Millisecond)
					}
				}
				swarm.publish(actx, withholder, &wire.Hello{Round: roundID, Role: wire.RoleWorker})
			}
			opens, closes := swarm.heard(seenO, seenC)
			seenO, seenC = seenO+len(opens), seenC+len(closes)
			type at struct {
				step uint64
				base cid.Cid
			}
			var targets []at
			for _, o := range opens {
				targets = append(targets, at{o.Step, o.Base})
				if !strings.Contains(which, "b") {
					continue
				}
				// (b) The withholder sends an update for every copy it
				// is dealt, naming a payload it never serves.
				deal := node.NewDeal(parsed, o)
				for u := range o.Units {
					for r := range uint8(2) {
						if deal.Dealt(o.Step, o.Attempt, u, r) != withholderID.String() {
							continue
						}
						swarm.publish(actx, withholder, &wire.Update{Round: roundID, Step: o.Step, Attempt: o.Attempt, Base: o.Base,
							Unit: u, Replica: r, Samples: uint32(parsed.Batch * parsed.InnerSteps), Loss: 0.5,
							Raw: randomCID(), Residual: randomCID(), Payload: randomCID(), Size: 4096})
					}
				}
			}
			for _, c := range closes {
				targets = append(targets, at{c.Step, c.Base})
			}
			for _, tg := range targets {
				if !strings.Contains(which, "a") {
					break
				}
				for i := range observers {
					swarm.publish(actx, keys[i], &wire.Commit{Round: roundID, Step: tg.step, Base: tg.base, Result: evil})
				}
			}
			select {
			case <-actx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()

	// (c) The flooder publishes large junk Updates of units not dealt to
	// it for the duration of the attack, as fast as gossip takes them.
	var floods atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !strings.Contains(which, "c") {
			return
		}
		junk := make([]byte, 900<<10)
		for i := 0; actx.Err() == nil; i++ {
			opens, _ := flooder.heard(0, 0)
			step, base := uint64(0), roundID
			if len(opens) > 0 {
				step, base = opens[len(opens)-1].Step, opens[len(opens)-1].Base
			}
			binary.LittleEndian.PutUint64(junk, uint64(i))
			rand.Read(junk[8:64])
			err := flooder.publish(actx, flood, &wire.Update{Round: roundID, Step: step, Base: base, Unit: uint32(i % 64), Samples: 1, Loss: 1,
				Raw: randomCID(), Residual: randomCID(), Payload: content.Sum(junk), Size: uint64(len(junk)), Data: junk})
			if err == nil {
				floods.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	// The round keeps finalising under attack. (Today it does not: the
	// checks below still run, so that a failure says what held.)
	const steps = 4
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute+30*time.Second)
	err = daemon.WaitFor(wctx, 200*time.Millisecond, func() bool { return snapStep() >= attackStart+steps })
	wcancel()
	if err != nil {
		t.Errorf("under attack the round did not reach step %d (stuck at %d): %v\ntracker stderr tail:\n%s", attackStart+steps, snapStep(), err, tailLines(tr.lines(), 30))
	}
	stalled := err != nil
	stopAttacks()
	wg.Wait()
	t.Logf("the flooder published %d junk updates (%d bytes); the swarm %d bytes", floods.Load(), flooder.sent.Load(), swarm.sent.Load())

	// The relay stayed within its caps: gossip and content drew from one
	// bucket per direction, refilled at the cap since the node started,
	// plus its burst and a piece in flight per stream.
	relaySt, err = getNodeStatus(status["relay"])
	if err != nil {
		t.Fatal(err)
	}
	uptime := time.Since(relaySt.Started).Seconds()
	const slack = 1 << 20
	maxOut, maxIn := int64(up*uptime)+slack, int64(down*uptime)+slack
	out, in := relaySt.GossipOut+relaySt.BlobOut, relaySt.GossipIn+relaySt.BlobIn
	t.Logf("relay after %.0f s: gossip %d in, %d out; content %d in, %d out (caps allow %d in, %d out)",
		uptime, relaySt.GossipIn, relaySt.GossipOut, relaySt.BlobIn, relaySt.BlobOut, maxIn, maxOut)
	if out > maxOut {
		t.Errorf("the relay sent %d bytes in %.0f s, over its --max-upload (%d at most)", out, uptime, maxOut)
	}
	if in > maxIn {
		t.Errorf("the relay received %d bytes in %.0f s, over its --max-download (%d at most)", in, uptime, maxIn)
	}
	if strings.Contains(which, "c") && flooder.sent.Load() < maxIn/4 {
		t.Errorf("the flood (%d bytes) was too small to test the relay's caps", flooder.sent.Load())
	}

	// After the attack the honest nodes catch up with the tracker.
	final := snapStep() + 1
	if !stalled {
		waitStep(final, "after the attack")
	}
	for _, name := range names {
		if stalled {
			break
		}
		err := daemon.WaitFor(ctx, 200*time.Millisecond, func() bool {
			st, err := getNodeStatus(status[name])
			return err == nil && st.Step >= final
		})
		if err != nil {
			t.Errorf("%s did not reach step %d after the attack", name, final)
		}
	}
	e.stopAll()

	// No step finalised the attacker's CID, and every honest node holds
	// what the tracker finalised.
	db, err := boltstore.OpenBolt(filepath.Join(tdir, "tracker.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := db.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range st.Finals {
		if f.Checkpoint.Equals(evil) {
			t.Errorf("step %d finalised the Sybils' checkpoint %s", f.Step, evil)
		}
	}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name, "head.json"))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var h struct {
			Step       uint64 `json:"step"`
			Checkpoint string `json:"checkpoint"`
		}
		if err := json.Unmarshal(b, &h); err != nil {
			t.Errorf("%s: head.json: %v", name, err)
			continue
		}
		switch {
		case h.Step == 0 || h.Step > uint64(len(st.Finals)):
			t.Errorf("%s stopped at C_%d; the tracker finalised %d steps", name, h.Step, len(st.Finals))
		case st.Finals[h.Step-1].Checkpoint.String() != h.Checkpoint:
			t.Errorf("%s holds C_%d = %s, the tracker finalised %s", name, h.Step, h.Checkpoint, st.Finals[h.Step-1].Checkpoint)
		default:
			t.Logf("%s holds C_%d = %s, as finalised", name, h.Step, h.Checkpoint)
		}
	}
}
