package tracker

import (
	"bytes"
	"testing"
	"time"

	"github.com/shoal-network/shoal/tracker/wire"
)

// FuzzDecodeState checks that DecodeState never panics, that a state it
// accepts encodes and decodes again to the same encoding, and that a
// tracker resumes from it without panicking.
func FuzzDecodeState(f *testing.F) {
	spec := testSpec(3, 1.0/3)
	st := &State{Round: spec.ID(), Base: genesis}
	b, err := EncodeState(st)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	b, err = EncodeState(sampleState(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("null"))
	f.Add([]byte(`{"round":{"/":"bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"},"base":{"/":"bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"},"ledger":{"a":null}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeState(b)
		if err != nil {
			if s != nil {
				t.Fatal("state returned with an error")
			}
			return
		}
		enc, err := EncodeState(s)
		if err != nil {
			t.Fatalf("accepted state does not encode: %v", err)
		}
		s2, err := DecodeState(enc)
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v\n%s", err, enc)
		}
		enc2, err := EncodeState(s2)
		if err != nil || !bytes.Equal(enc2, enc) {
			t.Fatalf("encoding is not a fixed point: %v\n%s\n%s", err, enc, enc2)
		}
		// A tracker of the round resumes from it.
		s.Round = spec.ID()
		tr, err := New(Config{Spec: spec, Genesis: genesis}, s, t0)
		if err != nil {
			t.Fatalf("New on an accepted state: %v", err)
		}
		tr.Ledger()
		now := t0.Add(time.Hour)
		hello := &wire.Hello{Round: spec.ID(), Role: wire.RoleWorker, Step: s.Step, Head: s.Base, Time: unixTime(now)}
		for _, p := range []string{"w1", "w2", "w3"} {
			tr.Receive(now, p, hello)
		}
		tr.Tick(now) // may fail on content the state's checks cannot see; must not panic
		tr.Ready()
	})
}
