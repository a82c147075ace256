package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// goldenMsgs are the messages whose wire encodings are pinned in
// testdata/wire, one of each kind, every field set to something other
// than its zero value where the format allows.
func goldenMsgs() []Msg {
	round, base := cidOf("round"), cidOf("C5")
	data := []byte("an encoded update\x00\xff")
	return []Msg{
		&Hello{Round: round, Role: RoleWorker, Step: 300, Head: base, Time: 1_796_000_000},
		&Open{Round: round, Step: 5, Attempt: 2, Epoch: 3, Base: base, Members: []string{peerA, peerB, "w1"}, Units: 1000,
			Checks: []Check{{Step: 3, Unit: 7, Base: cidOf("C3"), Checker: peerB, Attempt: 1, Peers: []string{peerA, "w1"}},
				{Step: 4, Unit: 130, Base: cidOf("C4"), Checker: "w1", Peers: []string{peerB}}},
			Excluded: []string{"liar", "w0"}},
		&Update{Round: round, Step: 5, Attempt: 2, Base: base, Unit: 129, Replica: 1, Samples: 800, Loss: 2.75,
			Raw: cidOf("raw"), Residual: cidOf("residual"), Payload: content.Sum(data), Size: uint64(len(data)), Data: data},
		&Close{Round: round, Step: 5, Epoch: 3, Base: base, Included: sortedIncluded(
			Included{Peer: peerB, Unit: 2, Payload: cidOf("p2"), Weight: 800},
			Included{Peer: peerA, Unit: 1, Payload: cidOf("p1"), Weight: 800},
			Included{Peer: peerA, Unit: 0, Payload: cidOf("p0"), Weight: 800})},
		&Commit{Round: round, Step: 5, Base: base, Result: cidOf("C6")},
		&Final{Round: round, Step: 5, Base: base, Checkpoint: cidOf("C6"), Providers: []string{peerA, peerB}},
		&Verdict{Round: round, Step: 4, Unit: 130, Checked: true, Raw: cidOf("raw"), Bad: []string{peerB}, Withheld: []string{"w1"}},
	}
}

// moreMsgs are other well-formed messages: empty lists, undefined
// optional CIDs, extreme values.
func moreMsgs() []Msg {
	round, base := cidOf("round"), cidOf("C0")
	return []Msg{
		&Hello{Round: round, Role: RoleObserver, Time: 1},
		&Hello{Round: round, Role: RoleWorker, Step: math.MaxUint64, Head: base, Time: math.MaxUint64},
		&Open{Round: round, Base: base, Members: []string{"w"}, Units: 1},
		&Open{Round: round, Step: math.MaxUint64, Attempt: MaxAttempt - 1, Epoch: math.MaxUint32, Base: base, Members: []string{"a", "b"}, Units: MaxUnits,
			Checks: []Check{{Step: 0, Unit: MaxUnits - 1, Base: base, Checker: strings.Repeat("c", MaxPeerLen), Attempt: MaxAttempt - 1,
				Peers: []string{strings.Repeat("a", MaxPeerLen), strings.Repeat("b", MaxPeerLen)}}}},
		&Open{Round: round, Base: base, Members: []string{"m"}, Units: 1, Excluded: manyPeers(MaxExcluded)},
		&Open{Round: round, Base: base, Members: []string{"m"}, Units: 1, Term: 1},
		&Open{Round: round, Base: base, Members: []string{"m"}, Units: 1, Excluded: []string{"x"}, Term: math.MaxUint64},
		&Update{Round: round, Base: base, Samples: 1, Raw: base, Residual: base, Payload: base, Size: 1 << 40},
		&Update{Round: round, Base: base, Samples: math.MaxUint32, Loss: float32(math.Copysign(0, -1)), Raw: base, Residual: base,
			Payload: content.Sum([]byte{0}), Size: 1, Data: []byte{0}},
		&Update{Round: round, Base: base, Samples: 1, Raw: base, Residual: base, Payload: base, Size: 1, Trace: cidOf("trace")},
		&Close{Round: round, Base: base, Included: []Included{{Peer: "w", Unit: 0, Payload: base, Weight: math.MaxUint32}}},
		&Close{Round: round, Base: base, Included: []Included{{Peer: "w", Unit: 0, Payload: base, Weight: 1}}, AuditKey: bytes.Repeat([]byte{7}, AuditKeySize)},
		&Close{Round: round, Base: base, Included: []Included{{Peer: "w", Unit: 0, Payload: base, Weight: 1}}, Term: 7},
		&Close{Round: round, Base: base, Included: []Included{{Peer: "w", Unit: 0, Payload: base, Weight: 1}}, AuditKey: bytes.Repeat([]byte{7}, AuditKeySize), Term: 2},
		&Final{Round: round, Base: base, Checkpoint: base},
		&Commit{Round: round, Step: 4, Base: base, Result: base, Attempt: MaxAttempt - 1},
		&Verdict{Round: round, Raw: base},
		&Verdict{Round: round, Step: 9, Unit: 1, Raw: base, Bad: []string{"a", "b"}},
		&Verdict{Round: round, Step: 9, Unit: 1, Checked: true, Raw: base, Bad: []string{"a"}, Withheld: []string{"b", "c"}},
		&Verdict{Round: round, Step: 9, Unit: 1, Raw: base, Withheld: []string{"b"}},
	}
}

// manyPeers returns n sorted peer names.
func manyPeers(n int) []string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprintf("x%06d", i)
	}
	return ps
}

func sortedIncluded(in ...Included) []Included {
	SortIncluded(in)
	return in
}

func wirePath(k Kind) string { return filepath.Join("testdata", "wire", k.String()+".hex") }

// wireFile renders an encoding as a golden file: a comment, then hex, 32
// bytes a line.
func wireFile(m Msg, b []byte) []byte {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# %s message, wire version %d (%d bytes)\n", m.Kind(), WireVersion, len(b))
	for len(b) > 0 {
		n := min(32, len(b))
		sb.WriteString(hex.EncodeToString(b[:n]))
		sb.WriteByte('\n')
		b = b[n:]
	}
	return []byte(sb.String())
}

// readWire returns the encoding in a golden file.
func readWire(tb testing.TB, k Kind) []byte {
	tb.Helper()
	data, err := os.ReadFile(wirePath(k))
	if err != nil {
		tb.Fatalf("%v (run go test -run WireGolden -rewrite to create it)", err)
	}
	var b []byte
	for _, l := range strings.Split(string(data), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		x, err := hex.DecodeString(l)
		if err != nil {
			tb.Fatalf("%s: %v", wirePath(k), err)
		}
		b = append(b, x...)
	}
	return b
}

// TestWireGolden pins the wire format: run with -rewrite after a
// deliberate format change (and bump WireVersion).
func TestWireGolden(t *testing.T) {
	for _, m := range goldenMsgs() {
		b, err := Marshal(m)
		if err != nil {
			t.Fatalf("%s: %v", m.Kind(), err)
		}
		path := wirePath(m.Kind())
		if *rewrite {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, wireFile(m, b), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if want := readWire(t, m.Kind()); !bytes.Equal(b, want) {
			t.Errorf("%s: encoding differs from %s:\ngot:\n%s\nwant:\n%s", m.Kind(), path, wireFile(m, b), wireFile(m, want))
		}
		got, err := Unmarshal(readWire(t, m.Kind()))
		if err != nil {
			t.Errorf("%s: golden encoding does not decode: %v", m.Kind(), err)
		} else if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: golden encoding decodes to %+v\nwant %+v", m.Kind(), got, m)
		}
	}
}

// TestOpenExcludedOptional: an Open that excludes no one encodes as it
// did before Open had an Excluded list (stored tracker states and
// version 1 peers read it as before); the list, when there is one,
// follows the checks.
func TestOpenExcludedOptional(t *testing.T) {
	golden := readWire(t, KindOpen)
	tail, _ := hex.DecodeString("02" + "04" + hex.EncodeToString([]byte("liar")) + "02" + hex.EncodeToString([]byte("w0")))
	if !bytes.HasSuffix(golden, tail) {
		t.Fatalf("the golden Open does not end with its Excluded list % x", tail)
	}
	bare := *goldenMsgs()[1].(*Open)
	bare.Excluded = nil
	b, err := Marshal(&bare)
	if err != nil {
		t.Fatal(err)
	}
	if want := golden[:len(golden)-len(tail)]; !bytes.Equal(b, want) {
		t.Errorf("an Open excluding no one encodes as\n% x\nwant\n% x", b, want)
	}
}

// TestWireGoldenHello pins one encoding in the test itself, so a change
// of format cannot pass by rewriting the files.
func TestWireGoldenHello(t *testing.T) {
	d := func(s string) string { b := sha256Digest(s); return hex.EncodeToString(b[:]) }
	want := "0101" + "01" + d("round") + "01" + "ac02" + "01" + d("C5") + "00" + "8092b3d806"
	b, err := Marshal(goldenMsgs()[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != want {
		t.Errorf("hello encodes to\n%s\nwant\n%s", got, want)
	}
}

// sha256Digest returns the digest of the CID cidOf(s).
func sha256Digest(s string) [32]byte {
	var d [32]byte
	copy(d[:], cidOf(s).Hash()[2:])
	return d
}

func TestWireRoundTrip(t *testing.T) {
	for i, m := range append(goldenMsgs(), moreMsgs()...) {
		name := fmt.Sprintf("%d:%s", i, m.Kind())
		if err := WellFormed(m); err != nil {
			t.Fatalf("%s: example is not well formed: %v", name, err)
		}
		b, err := Marshal(m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b[0] != WireVersion || Kind(b[1]) != m.Kind() {
			t.Errorf("%s: header % x", name, b[:2])
		}
		got, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: decoded %+v\nwant %+v", name, got, m)
		}
		again, err := Marshal(got)
		if err != nil || !bytes.Equal(again, b) {
			t.Errorf("%s: re-encoding gives % x, %v\nwant % x", name, again, err, b)
		}
		// The JSON form (as in the tracker's state) round-trips too.
		j, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		back := reflect.New(reflect.TypeOf(m).Elem()).Interface().(Msg)
		if err := json.Unmarshal(j, back); err != nil {
			t.Fatalf("%s: JSON: %v", name, err)
		}
		if !reflect.DeepEqual(back, m) {
			t.Errorf("%s: JSON gives %+v\nwant %+v", name, back, m)
		}
	}
}

// wireEnc starts an encoding by hand, for bytes Marshal would not make.
func wireEnc(k Kind) *wireEncoder {
	return &wireEncoder{b: []byte{WireVersion, byte(k)}}
}

// rawMarshal encodes m without checking it.
func rawMarshal(m Msg) []byte {
	e := wireEnc(m.Kind())
	m.encode(e)
	return e.b
}

func TestUnmarshalRejects(t *testing.T) {
	round, base := cidOf("round"), cidOf("C0")
	golden := map[Kind][]byte{}
	for _, m := range goldenMsgs() {
		b, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		golden[m.Kind()] = b
	}
	hello := golden[KindHello]
	// helloBody is the golden Hello without its time, its last field.
	helloBody := hello[:len(hello)-len(binary.AppendUvarint(nil, 1_796_000_000))]
	with := func(b []byte, f func(b []byte) []byte) []byte { return f(bytes.Clone(b)) }
	// helloStep encodes a Hello up to its step, then the given step bytes
	// and an undefined head.
	helloStep := func(step ...byte) []byte {
		e := wireEnc(KindHello)
		e.cid(round)
		e.byte(byte(RoleWorker))
		e.b = append(e.b, step...)
		e.cid(cidOf("head"))
		return e.b
	}
	openUpTo := func() *wireEncoder { // an Open up to its members
		e := wireEnc(KindOpen)
		e.cid(round)
		e.uint(1) // step
		e.uint(0) // attempt
		e.uint(0) // epoch
		e.cid(base)
		return e
	}
	upd := func(data []byte) *Update {
		return &Update{Round: round, Base: base, Samples: 1, Raw: base, Residual: base, Payload: content.Sum(data), Size: uint64(len(data)), Data: data}
	}
	for _, c := range []struct {
		name  string
		b     []byte
		field string
	}{
		{"empty", nil, "header"},
		{"one byte", []byte{WireVersion}, "header"},
		{"unknown version", with(hello, func(b []byte) []byte { b[0] = 2; return b }), "version"},
		{"version 0", with(hello, func(b []byte) []byte { b[0] = 0; return b }), "version"},
		{"kind 0", with(hello, func(b []byte) []byte { b[1] = 0; return b }), "kind"},
		{"unknown kind", with(hello, func(b []byte) []byte { b[1] = 8; return b }), "kind"},
		{"kind 255", with(hello, func(b []byte) []byte { b[1] = 255; return b }), "kind"},
		{"trailing byte", append(bytes.Clone(hello), 0), "end"},
		{"trailing bytes", append(bytes.Clone(golden[KindVerdict]), 1, 2, 3), "end"},
		{"truncated CID", hello[:20], "round"},
		{"no time", helloBody, "time"},
		{"no token length", helloBody[:len(helloBody)-1], "token"},
		{"truncated head", helloBody[:len(helloBody)-2], "head"},
		{"head presence only", helloBody[:len(helloBody)-33], "head"},
		{"token over the limit", func() []byte {
			b := bytes.Clone(helloBody[:len(helloBody)-1])
			return append(binary.AppendUvarint(b, MaxToken+1), make([]byte, MaxToken+1)...)
		}(), "token"},
		{"truncated varint", func() []byte { e := wireEnc(KindHello); e.cid(round); e.byte(1); return append(e.b, 0x80) }(), "step"},
		{"non-minimal varint", helloStep(0x80, 0x00), "step"},
		{"non-minimal varint 300", helloStep(0xac, 0x82, 0x00), "step"},
		{"overlong varint", helloStep(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), "step"},
		{"CID presence byte 2", with(hello, func(b []byte) []byte { b[2] = 2; return b }), "round"},
		{"undefined round", rawMarshal(&Hello{Role: RoleWorker}), "round"},
		{"trace written undefined", append(rawMarshal(upd([]byte{1})), 0), "encoding"},
		{"truncated trace", append(rawMarshal(upd([]byte{1})), 1, 2, 3), "trace"},
		{"unknown role", rawMarshal(&Hello{Round: round, Role: 3, Time: 1}), "role"},
		{"hello without time", rawMarshal(&Hello{Round: round, Role: RoleWorker}), "time"},
		{"commit attempt 0 written out", append(rawMarshal(&Commit{Round: round, Base: round, Result: round}), 0), "attempt"},
		{"short audit key", rawMarshal(&Close{Round: round, Base: round, Included: []Included{{Peer: "w", Payload: round, Weight: 1}}, AuditKey: []byte{1, 2, 3}}), "audit_key"},
		{"unsorted members", rawMarshal(&Open{Round: round, Base: base, Members: []string{"b", "a"}, Units: 1}), "members[1]"},
		{"repeated members", rawMarshal(&Open{Round: round, Base: base, Members: []string{"a", "a"}, Units: 1}), "members[1]"},
		{"empty member", rawMarshal(&Open{Round: round, Base: base, Members: []string{""}, Units: 1}), "members[0]"},
		{"no members", rawMarshal(&Open{Round: round, Base: base, Units: 1}), "members"},
		{"no units", rawMarshal(&Open{Round: round, Base: base, Members: []string{"a"}}), "units"},
		{"unsorted checks", rawMarshal(&Open{Round: round, Step: 9, Base: base, Members: []string{"a"}, Units: 1,
			Checks: []Check{{Step: 2, Base: base, Checker: "a", Peers: []string{"b"}}, {Step: 1, Base: base, Checker: "a", Peers: []string{"b"}}}}), "checks[1]"},
		{"check of the open step", rawMarshal(&Open{Round: round, Step: 1, Base: base, Members: []string{"a"}, Units: 1,
			Checks: []Check{{Step: 1, Base: base, Checker: "a", Peers: []string{"b"}}}}), "checks[0].step"},
		{"check of no peers", rawMarshal(&Open{Round: round, Step: 1, Base: base, Members: []string{"a"}, Units: 1,
			Checks: []Check{{Step: 0, Base: base, Checker: "a"}}}), "checks[0].peers"},
		{"check of three peers", rawMarshal(&Open{Round: round, Step: 1, Base: base, Members: []string{"a"}, Units: 1,
			Checks: []Check{{Step: 0, Base: base, Checker: "a", Peers: []string{"b", "c", "d"}}}}), "checks[0].peers"},
		{"check of unsorted peers", rawMarshal(&Open{Round: round, Step: 1, Base: base, Members: []string{"a"}, Units: 1,
			Checks: []Check{{Step: 0, Base: base, Checker: "a", Peers: []string{"c", "b"}}}}), "checks[0].peers[1]"},
		{"checker checks itself", rawMarshal(&Open{Round: round, Step: 1, Base: base, Members: []string{"a"}, Units: 1,
			Checks: []Check{{Step: 0, Base: base, Checker: "a", Peers: []string{"a", "b"}}}}), "checks[0].checker"},
		{"check attempt too big", rawMarshal(&Open{Round: round, Step: 1, Base: base, Members: []string{"a"}, Units: 1,
			Checks: []Check{{Step: 0, Base: base, Checker: "a", Attempt: MaxAttempt, Peers: []string{"b"}}}}), "checks[0].attempt"},
		{"check without base", rawMarshal(&Open{Round: round, Step: 1, Base: base, Members: []string{"a"}, Units: 1,
			Checks: []Check{{Step: 0, Checker: "a", Peers: []string{"b"}}}}), "checks"},
		{"unsorted excluded", rawMarshal(&Open{Round: round, Base: base, Members: []string{"a"}, Units: 1, Excluded: []string{"c", "b"}}), "excluded[1]"},
		{"repeated excluded", rawMarshal(&Open{Round: round, Base: base, Members: []string{"a"}, Units: 1, Excluded: []string{"b", "b"}}), "excluded[1]"},
		{"excluded member", rawMarshal(&Open{Round: round, Base: base, Members: []string{"a", "b"}, Units: 1, Excluded: []string{"b"}}), "excluded[0]"},
		{"too many excluded", rawMarshal(&Open{Round: round, Base: base, Members: []string{"a"}, Units: 1, Excluded: manyPeers(MaxExcluded + 1)}), "excluded"},
		{"empty excluded written out", append(rawMarshal(&Open{Round: round, Base: base, Members: []string{"a"}, Units: 1}), 0), "encoding"},
		{"unsorted providers", rawMarshal(&Final{Round: round, Base: base, Checkpoint: base, Providers: []string{"b", "a"}}), "providers[1]"},
		{"unsorted bad", rawMarshal(&Verdict{Round: round, Raw: base, Bad: []string{"b", "a"}}), "bad[1]"},
		{"unsorted included", rawMarshal(&Close{Round: round, Base: base, Included: []Included{
			{Peer: "b", Payload: base, Weight: 1}, {Peer: "a", Payload: base, Weight: 1}}}), "included[1]"},
		{"repeated included", rawMarshal(&Close{Round: round, Base: base, Included: []Included{
			{Peer: "a", Payload: base, Weight: 1}, {Peer: "a", Unit: 1, Payload: base, Weight: 1}}}), "included[1]"},
		{"included without weight", rawMarshal(&Close{Round: round, Base: base, Included: []Included{{Peer: "a", Payload: base}}}), "included[0].weight"},
		{"close without updates", rawMarshal(&Close{Round: round, Base: base}), "included"},
		{"data not hashing to payload", rawMarshal(func() *Update { u := upd([]byte("data")); u.Payload = cidOf("other"); return u }()), "data"},
		{"data not of size", rawMarshal(func() *Update { u := upd([]byte("data")); u.Size = 5; return u }()), "data"},
		{"replica 2", rawMarshal(func() *Update { u := upd(nil); u.Size, u.Replica = 1, 2; return u }()), "replica"},
		{"no samples", rawMarshal(func() *Update { u := upd(nil); u.Size, u.Samples = 1, 0; return u }()), "samples"},
		{"loss NaN", rawMarshal(func() *Update { u := upd(nil); u.Size, u.Loss = 1, float32(math.NaN()); return u }()), "loss"},
		{"loss infinite", rawMarshal(func() *Update { u := upd(nil); u.Size, u.Loss = 1, float32(math.Inf(-1)); return u }()), "loss"},
		{"size 0", rawMarshal(upd(nil)), "size"},
		{"checked byte 2", with(rawMarshal(&Verdict{Round: round, Raw: base}), func(b []byte) []byte {
			b[2+33+1+1] = 2
			return b
		}), "checked"},

		// Counts larger than the bytes that follow.
		{"members count", func() []byte { e := openUpTo(); e.uint(1000); e.str("a"); return e.b }(), "members"},
		{"checks count", func() []byte {
			e := openUpTo()
			e.strs([]string{"a"})
			e.uint(1)
			e.uint(50)
			return e.b
		}(), "checks"},
		{"included count", func() []byte {
			e := wireEnc(KindClose)
			e.cid(round)
			e.uint(0) // step
			e.uint(0) // epoch
			e.cid(base)
			e.uint(2)
			e.str("a")
			e.uint(0)
			e.cid(base)
			e.uint(1)
			return e.b
		}(), "included"},
		{"providers count", func() []byte {
			e := wireEnc(KindFinal)
			e.cid(round)
			e.uint(0)
			e.cid(base)
			e.cid(base)
			e.uint(3)
			e.str("a")
			return e.b
		}(), "providers"},
		{"string length", func() []byte { e := openUpTo(); e.uint(1); e.uint(20); e.b = append(e.b, "abc"...); return e.b }(), "members"},
		{"data length", func() []byte {
			b := rawMarshal(upd([]byte("data")))
			b = b[:len(b)-5]
			b = binary.AppendUvarint(b, 100)
			return append(b, "data"...)
		}(), "data"},

		// Sizes over the limits.
		{"too many members", func() []byte { e := openUpTo(); e.uint(MaxMembers + 1); return e.b }(), "members"},
		{"too many checks", func() []byte { e := openUpTo(); e.strs([]string{"a"}); e.uint(1); e.uint(MaxChecks + 1); return e.b }(), "checks"},
		{"too many included", func() []byte {
			e := wireEnc(KindClose)
			e.cid(round)
			e.uint(0) // step
			e.uint(0) // epoch
			e.cid(base)
			e.uint(MaxUnits + 1)
			return e.b
		}(), "included"},
		{"too many providers", rawMarshal(&Final{Round: round, Base: base, Checkpoint: base, Providers: peers(MaxProviders + 1)}), "providers"},
		{"too many bad", rawMarshal(&Verdict{Round: round, Raw: base, Bad: []string{"a", "b", "c"}}), "bad"},
		{"too many withheld", rawMarshal(&Verdict{Round: round, Checked: true, Raw: base, Withheld: []string{"a", "b", "c"}}), "withheld"},
		{"unsorted withheld", rawMarshal(&Verdict{Round: round, Checked: true, Raw: base, Withheld: []string{"b", "a"}}), "withheld[1]"},
		{"withheld and bad", rawMarshal(&Verdict{Round: round, Checked: true, Raw: base, Bad: []string{"a"}, Withheld: []string{"a"}}), "withheld[0]"},
		{"peer ID too long", rawMarshal(&Open{Round: round, Base: base, Members: []string{strings.Repeat("p", MaxPeerLen+1)}, Units: 1}), "members"},
		{"checker too long", rawMarshal(&Open{Round: round, Step: 1, Base: base, Members: []string{"a"}, Units: 1,
			Checks: []Check{{Base: base, Checker: strings.Repeat("p", MaxPeerLen+1), Peers: []string{"b"}}}}), "checks[0].checker"},
		{"too many units", rawMarshal(&Open{Round: round, Base: base, Members: []string{"a"}, Units: MaxUnits + 1}), "units"},
		{"attempt too big", rawMarshal(&Open{Round: round, Base: base, Members: []string{"a"}, Units: 1, Attempt: MaxAttempt}), "attempt"},
		{"unit too big", rawMarshal(&Verdict{Round: round, Raw: base, Unit: MaxUnits}), "unit"},
		{"samples over 32 bits", func() []byte {
			e := wireEnc(KindUpdate)
			e.cid(round)
			e.uint(0)
			e.uint(0)
			e.cid(base)
			e.uint(0)
			e.byte(0)
			e.uint(math.MaxUint32 + 1)
			return e.b
		}(), "samples"},
		{"inline data over the limit", func() []byte {
			b := rawMarshal(upd(nil))
			b = b[:len(b)-1]
			return binary.AppendUvarint(b, MaxInline+1)
		}(), "data"},
	} {
		_, err := Unmarshal(c.b)
		wantField(t, c.name, err, c.field)
	}
}

// wantField checks that err is a MessageError about field.
func wantField(t *testing.T, name string, err error, field string) {
	t.Helper()
	var me *MessageError
	switch {
	case err == nil:
		t.Errorf("%s: accepted", name)
	case !errors.As(err, &me):
		t.Errorf("%s: error %T %v is not a MessageError", name, err, err)
	case me.Field != field:
		t.Errorf("%s: error about %q, want %q: %v", name, me.Field, field, err)
	case !errors.Is(err, ErrMessage):
		t.Errorf("%s: error does not wrap ErrMessage", name)
	case !strings.Contains(err.Error(), field+": "):
		t.Errorf("%s: error text %q does not name %s", name, err, field)
	}
}

// TestUnmarshalTooBig checks the size limit, before any decoding.
func TestUnmarshalTooBig(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 64 MiB")
	}
	b := make([]byte, maxMessageSize+1)
	b[0], b[1] = WireVersion, byte(KindUpdate)
	_, err := Unmarshal(b)
	wantField(t, "oversized message", err, "size")
}

// TestUnmarshalTruncated cuts every golden and extra message at every
// length: each prefix is refused with an error naming a field, but for
// an Open cut just before its optional Excluded list, which is the same
// Open excluding no one (and a Verdict before its Withheld list).
func TestUnmarshalTruncated(t *testing.T) {
	for i, m := range append(goldenMsgs(), moreMsgs()...) {
		b, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		without, withoutTerm := -1, -1
		if o, ok := m.(*Open); ok && len(o.Excluded) > 0 {
			bare := *o
			bare.Excluded, bare.Term = nil, 0
			wb, err := Marshal(&bare)
			if err != nil || !bytes.HasPrefix(b, wb) {
				t.Fatalf("%d: an Open without its Excluded list does not encode as a prefix of it (%v)", i, err)
			}
			without = len(wb)
		}
		if o, ok := m.(*Open); ok && o.Term > 0 {
			bare := *o
			bare.Term = 0
			wb, err := Marshal(&bare)
			if err != nil || !bytes.HasPrefix(b, wb) {
				t.Fatalf("%d: an Open without its term does not encode as a prefix of it (%v)", i, err)
			}
			withoutTerm = len(wb)
			if len(o.Excluded) == 0 {
				without = len(wb)
			}
		}
		if c, ok := m.(*Close); ok && c.Term > 0 {
			bare := *c
			bare.Term = 0
			wb, err := Marshal(&bare)
			if err != nil || !bytes.HasPrefix(b, wb) {
				t.Fatalf("%d: a Close without its term does not encode as a prefix of it (%v)", i, err)
			}
			withoutTerm = len(wb)
			if len(c.AuditKey) == 0 {
				without = len(wb)
			}
		}
		if u, ok := m.(*Update); ok && u.Trace.Defined() {
			bare := *u
			bare.Trace = cid.Undef
			wb, err := Marshal(&bare)
			if err != nil || !bytes.HasPrefix(b, wb) {
				t.Fatalf("%d: an Update without its trace does not encode as a prefix of it (%v)", i, err)
			}
			without = len(wb)
		}
		if c, ok := m.(*Commit); ok && c.Attempt > 0 {
			bare := *c
			bare.Attempt = 0
			wb, err := Marshal(&bare)
			if err != nil || !bytes.HasPrefix(b, wb) {
				t.Fatalf("%d: a Commit without its attempt does not encode as a prefix of it (%v)", i, err)
			}
			without = len(wb)
		}
		if c, ok := m.(*Close); ok && len(c.AuditKey) > 0 {
			bare := *c
			bare.AuditKey, bare.Term = nil, 0
			wb, err := Marshal(&bare)
			if err != nil || !bytes.HasPrefix(b, wb) {
				t.Fatalf("%d: a Close without its audit key does not encode as a prefix of it (%v)", i, err)
			}
			without = len(wb)
		}
		if v, ok := m.(*Verdict); ok && len(v.Withheld) > 0 {
			bare := *v
			bare.Withheld = nil
			wb, err := Marshal(&bare)
			if err != nil || !bytes.HasPrefix(b, wb) {
				t.Fatalf("%d: a Verdict without its Withheld list does not encode as a prefix of it (%v)", i, err)
			}
			without = len(wb)
		}
		for n := range len(b) {
			if n == without || n == withoutTerm {
				continue
			}
			_, err := Unmarshal(b[:n])
			var me *MessageError
			if !errors.As(err, &me) || me.Field == "" {
				t.Errorf("%d:%s cut to %d of %d bytes: %v, want a MessageError naming a field", i, m.Kind(), n, len(b), err)
			}
		}
	}
}

func TestMarshalRejects(t *testing.T) {
	round := cidOf("round")
	for _, c := range []struct {
		name  string
		m     Msg
		field string
	}{
		{"no round", &Commit{Base: round, Result: round}, "round"},
		{"unsorted members", &Open{Round: round, Base: round, Members: []string{"b", "a"}, Units: 1}, "members[1]"},
		{"data over the limit", &Update{Round: round, Base: round, Samples: 1, Raw: round, Residual: round, Payload: round,
			Size: MaxInline + 1, Data: make([]byte, MaxInline+1)}, "data"},
	} {
		b, err := Marshal(c.m)
		if b != nil {
			t.Errorf("%s: Marshal returned bytes with an error", c.name)
		}
		wantField(t, c.name, err, c.field)
	}
}

// TestMessageErrorText checks the error's text with and without a kind.
func TestMessageErrorText(t *testing.T) {
	if got := (&MessageError{Kind: KindOpen, Field: "members[1]", Msg: "not sorted or repeated"}).Error(); got != "open message: members[1]: not sorted or repeated" {
		t.Errorf("got %q", got)
	}
	if got := (&MessageError{Field: "kind", Msg: "unknown message kind 9"}).Error(); got != "message: kind: unknown message kind 9" {
		t.Errorf("got %q", got)
	}
	if Kind(9).String() != "kind(9)" || KindVerdict.String() != "verdict" {
		t.Errorf("kind names: %s, %s", Kind(9), KindVerdict)
	}
}
