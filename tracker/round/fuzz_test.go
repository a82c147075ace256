package round

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
