package group

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/shoal-network/shoal/tracker/wire"
)

func entry(term, index uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Term: new(term), Index: new(index), Type: raftpb.EntryNormal.Enum(), Data: []byte(data)}
}

// TestLogStoreReopens: what Save and Compact wrote is what a reopened
// log holds: entries replaced from a conflicting index on, the hard
// state, and the snapshot with the entries kept behind it.
func TestLogStoreReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s, err := OpenLogStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Empty() {
		t.Fatal("a new log is not empty")
	}
	var ents []*raftpb.Entry
	for i := uint64(1); i <= 10; i++ {
		ents = append(ents, entry(1, i, "a"))
	}
	if err := s.Save(&raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(3))}, ents, nil); err != nil {
		t.Fatal(err)
	}
	// A new leader's entries replace 8 to 10.
	if err := s.Save(&raftpb.HardState{Term: new(uint64(2)), Commit: new(uint64(8))}, []*raftpb.Entry{entry(2, 8, "b"), entry(2, 9, "b")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(6, &raftpb.ConfState{Voters: []uint64{1, 2, 3}}, []byte("state at 6"), 2); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenLogStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := s.Storage()
	first, _ := st.FirstIndex()
	last, _ := st.LastIndex()
	if first != 7 || last != 9 {
		t.Fatalf("reopened log holds %d to %d, want 7 to 9", first, last)
	}
	got, err := st.Entries(7, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"a", "b", "b"} {
		if string(got[i].GetData()) != want {
			t.Fatalf("entry %d: %q, want %q", got[i].GetIndex(), got[i].GetData(), want)
		}
	}
	hs, cs, _ := st.InitialState()
	if hs.GetTerm() != 2 || hs.GetCommit() != 8 || len(cs.GetVoters()) != 3 {
		t.Fatalf("hard state %v, conf %v", hs, cs)
	}
	if snap := s.Snapshot(); snap.GetMetadata().GetIndex() != 6 || !bytes.Equal(snap.GetData(), []byte("state at 6")) {
		t.Fatalf("snapshot %v", snap.GetMetadata())
	}
}

func TestInputRoundTrip(t *testing.T) {
	at := time.Unix(1_800_000_000, 123456789).UTC()
	hello := &wire.Hello{Round: cidOf("round"), Role: wire.RoleWorker, Head: cidOf("head"), Time: 5}
	upd := &wire.Update{Round: cidOf("round"), Base: cidOf("b"), Samples: 1, Raw: cidOf("r"), Residual: cidOf("s"),
		Payload: cidOf("data"), Size: 4, Data: []byte("data")}
	for _, in := range []*Input{
		{Kind: KindReceive, At: at, From: "w1", Msg: hello},
		{Kind: KindReceive, At: at, From: "w2", Msg: upd},
		{Kind: KindTick, At: at},
		{Kind: KindHeld, At: at, Payload: cidOf("p"), OK: true},
		{Kind: KindHeld, At: at, Payload: cidOf("p")},
		{Kind: KindLead, At: at, Term: 7},
		{Kind: KindLead, At: at, Term: 8, Options: []byte("digest")},
	} {
		b, err := MarshalInput(in)
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnmarshalInput(b)
		if err != nil {
			t.Fatalf("%d: %v", in.Kind, err)
		}
		again, err := MarshalInput(back)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%d: re-encodes to %x, %v; want %x", in.Kind, again, err, b)
		}
		if !back.At.Equal(at) || back.From != in.From || back.Term != in.Term || back.OK != in.OK || !back.Payload.Equals(in.Payload) ||
			!bytes.Equal(back.Options, in.Options) {
			t.Fatalf("%d: decoded %+v, want %+v", in.Kind, back, in)
		}
		if u, ok := back.Msg.(*wire.Update); ok && len(u.Data) != 0 {
			t.Fatal("an update's inline data went into the log")
		}
		for n := range len(b) {
			if _, err := UnmarshalInput(b[:n]); err == nil && in.Kind != KindReceive {
				t.Fatalf("%d: cut to %d of %d bytes, decoded", in.Kind, n, len(b))
			}
		}
	}
	if _, err := MarshalInput(&Input{Kind: KindReceive, At: at}); err == nil {
		t.Fatal("a message input without a message encoded")
	}
}

func FuzzUnmarshalInput(f *testing.F) {
	for _, in := range []*Input{{Kind: KindTick, At: time.Unix(1, 0)}, {Kind: KindLead, At: time.Unix(2, 0), Term: 3},
		{Kind: KindHeld, At: time.Unix(3, 0), Payload: cidOf("x"), OK: true}} {
		b, _ := MarshalInput(in)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := UnmarshalInput(b)
		if err != nil {
			return
		}
		again, err := MarshalInput(in)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", in, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("%x decodes and re-encodes to %x", b, again)
		}
	})
}
