package tracker

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics, that every problem it reports
// is a FieldError, and that anything it accepts re-encodes canonically to
// bytes that parse back to the same spec, ID and encoding.
func FuzzParse(f *testing.F) {
	for _, name := range examples {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(minimal))
	f.Add([]byte(minimal + "codec: topk:k=8\naggregation: centered-clip:tau=2\nseed: 18446744073709551615\n"))
	f.Add([]byte(strings.Replace(minimal, "arch: gpt", "arch: mlp", 1) + "  hidden: 8\n  window: 4\n"))
	f.Add([]byte("{model: {arch: gpt}, inner: {betas: [1, 2]}, deadline: 1h, trackers: [" + peerACID + "]}"))
	f.Add([]byte("x: &a [1]\ny: *a\n---\n"))
	f.Add([]byte(`{trackers: [` + peerAK + `], deadline: 1m60s, target_samples: 0x640, inner: {lr: 6e-3, betas: [0.9, .95]},
  inner_steps: 50, dataset: ` + dataB58 + `, init_checkpoint: ` + ckptCID + `, model: {heads: 4, layers: 2, dim: 128, ctx: 64, arch: gpt},
  codec: "dct-topk:k=2", aggregation: trimmed-mean:trim=0.25, admission: closed, name: "\u00e9t\u00e9", description: "a\tb\nc"}`))
	f.Add([]byte("model:\n  arch: gpt\n  ctx: 64.0\n  hiden: 2\ndataset: bafybogus\ninner_steps: ten\ninner:\n  lr: -0.1\n  eps: .nan\ndeadline: 90\n\tbatch: 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if s != nil {
				t.Fatal("spec returned with an error")
			}
			ps := Problems(err)
			if len(ps) == 0 || len(ps) != strings.Count(err.Error(), "\n")+1-strings.Count(joinMsgs(ps), "\n") {
				t.Fatalf("error is not a list of FieldErrors: %v", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed spec does not validate: %v", err)
		}
		canon := s.Canonical()
		back, err := Parse(canon, "canonical")
		if err != nil {
			t.Fatalf("canonical encoding does not parse: %v\n%s", err, canon)
		}
		if back.ID() != s.ID() {
			t.Fatalf("round ID changed on re-encoding: %s, then %s\n%s\n%s", s.ID(), back.ID(), canon, back.Canonical())
		}
		if !bytes.Equal(back.Canonical(), canon) {
			t.Fatalf("canonical encoding is not a fixed point")
		}
	})
}

// joinMsgs joins the texts of problems, for counting the newlines they
// hold themselves.
func joinMsgs(ps []*FieldError) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.Error())
	}
	return b.String()
}

// FuzzUnmarshal checks that Unmarshal never panics, that every error it
// returns is a MessageError naming a field, and that it accepts only
// canonical encodings: what it decodes marshals back to the same bytes.
func FuzzUnmarshal(f *testing.F) {
	for _, m := range goldenMsgs() {
		f.Add(readWire(f, m.Kind()))
	}
	for _, m := range moreMsgs() {
		b, err := Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b)
		if err != nil {
			var me *MessageError
			if m != nil || !errors.As(err, &me) || me.Field == "" {
				t.Fatalf("Unmarshal: %T %v with message %v, want a MessageError naming a field", err, err, m)
			}
			return
		}
		again, err := Marshal(m)
		if err != nil {
			t.Fatalf("accepted message does not marshal: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted % x\nre-marshals to % x", b, again)
		}
	})
}

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
		store := &MemStorage{}
		if err := store.Save(s); err != nil {
			t.Fatalf("saving the accepted state: %v", err)
		}
		tr, err := New(Config{Spec: spec, Genesis: genesis, Storage: store}, t0)
		if err != nil {
			t.Fatalf("New on an accepted state: %v", err)
		}
		tr.Ledger()
		now := t0.Add(time.Hour)
		hello := &Hello{Round: spec.ID(), Role: RoleWorker, Step: s.Step, Head: s.Base}
		for _, p := range []string{"w1", "w2", "w3"} {
			tr.Receive(now, p, hello)
		}
		tr.Tick(now) // may fail on content the state's checks cannot see; must not panic
		tr.Ready()
	})
}
