package round

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
)

const (
	peerA    = "12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NY"
	peerACID = "bafzaajaiaejcaunrthxxaibd2gjfu7ohy72b3ln3j2qfqyqbwylvy5voa2bgjp6v" // peerA as a libp2p-key CID
	peerAK   = "k51qzi5uqu5di7w1eyar8iaid07ujoip1j5h9ibaj4id67buk1ciku4cdzj6qd"    // the same in base36
	peerB    = "12D3KooWPhE3uLopstLtMMJpRoK2NaCvW3FMs4grT9PuWjZB945h"
	dataCID  = "bafkreia2vmsnih3klgcd6wcur3d3kywwjddoymsgemmfxx5fhgwyyx3eq4"
	dataB58  = "zb2rhYSP9swm4GXN4nbwDkcf1Loe1svkr767V4exGMjwTHukS" // dataCID in base58btc
	ckptCID  = "bafkreichgieyp6netvnqaem3syhsi6uvm5z7k5kdtavyx7fw3jn3hl6z54"
)

// minimal is the smallest valid spec; testdata/builtin-gpt-tiny.yaml
// without its comments and name.
const minimal = `model:
  arch: gpt
  ctx: 64
  dim: 128
  layers: 2
  heads: 4
dataset: builtin
inner_steps: 50
inner:
  lr: 0.006
target_samples: 1600
deadline: 2m
trackers:
  - ` + peerA + `
`

func mustParse(t *testing.T, src string) *Spec {
	t.Helper()
	s, err := Parse([]byte(src), "round.yaml")
	if err != nil {
		t.Fatalf("parse:\n%v\nspec:\n%s", err, src)
	}
	return s
}

func TestDefaults(t *testing.T) {
	s := mustParse(t, minimal)
	want := Defaults()
	want.Model = Model{Arch: "gpt", Vocab: 256, Ctx: 64, Dim: 128, Layers: 2, Heads: 4}
	want.Dataset = Dataset{Builtin: true}
	want.InnerSteps = 50
	want.Inner.LR = 0.006
	want.TargetSamples = 1600
	want.Deadline = 2 * time.Minute
	want.Trackers = []string{peerA}
	want.file, want.lines = s.file, s.lines
	if !reflect.DeepEqual(s, want) {
		t.Errorf("minimal spec:\ngot  %+v\nwant %+v", s, want)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Validate after Parse: %v", err)
	}
	if s.UnitSamples() != 800 || s.UnitsPerStep() != 2 {
		t.Errorf("unit samples %d, units per step %d", s.UnitSamples(), s.UnitsPerStep())
	}
}

// TestSameRound writes the minimal spec in many different ways that mean
// the same round; all must have its ID.
func TestSameRound(t *testing.T) {
	base := mustParse(t, minimal).ID()
	variants := map[string]string{
		"comments and blank lines": "# a round\n\n" + strings.ReplaceAll(minimal, "\n", "   # note\n\n"),
		"flow style, reordered keys, other spellings": `{trackers: [` + peerACID + `], deadline: 120s,
  target_samples: 1600, inner: {lr: 6e-3}, inner_steps: 50, dataset: "builtin",
  model: {heads: 4, layers: 2, dim: 128, ctx: 64, arch: 'gpt'}}`,
		"every default written": `version: 2
name: ""
description:
model: {arch: gpt, vocab: 0x100, ctx: 64, dim: 128, layers: 2, heads: 4, seed: 0}
dataset: builtin
inner_steps: 50
batch: 16
inner:
  lr: 0.0060
  warmup: 0
  betas: [0.90, 9.5e-1]
  eps: 0.00000001
  weight_decay: .1
  clip_norm: 1.0
outer: {lr: 0.7, momentum: 0.9}
codec: fp32
aggregation: " mean "
target_samples: 1600
deadline: 1m60s
verification_rate: 5e-2
seed: 0
trackers: [` + peerAK + `]
init_checkpoint: ~
admission: open
`,
		"null values for optional fields": minimal + "outer:\nname: ~\ncodec:\nseed: null\n",
		"windows line endings":            strings.ReplaceAll(minimal, "\n", "\r\n"),
		"block scalar for the lr":         strings.Replace(minimal, "lr: 0.006", "lr: !!float 6e-3", 1),
	}
	for name, src := range variants {
		if got := mustParse(t, src).ID(); got != base {
			t.Errorf("%s: ID %s, want %s", name, got, base)
		}
	}

	// Other fields and forms.
	withData := func(d string) string { return strings.Replace(minimal, "dataset: builtin", "dataset: "+d, 1) }
	if a, b := mustParse(t, withData(dataCID)).ID(), mustParse(t, withData(dataB58)).ID(); a != b {
		t.Errorf("dataset CID in base32 and base58btc give different IDs %s and %s", a, b)
	}
	codecs := []string{"topk", "topk:chunk=4096", "topk: k=64 , values=fp16", "topk:values=fp16,k=64,chunk=4096"}
	for _, c := range codecs {
		a := mustParse(t, minimal+"codec: topk:chunk=4096,k=64,values=fp16\n").ID()
		if b := mustParse(t, minimal+"codec: '"+c+"'\n").ID(); a != b {
			t.Errorf("codec %q: ID differs from the explicit form", c)
		}
	}
	a := mustParse(t, minimal+"name: x\ndescription: |\n  two\n  lines\n").ID()
	b := mustParse(t, minimal+"name: ' x '\ndescription: \"two\\nlines\"\n").ID()
	if a != b {
		t.Errorf("surrounding white space of name and description changes the ID")
	}
	a = mustParse(t, minimal+"seed: 9\n").ID()
	b = mustParse(t, strings.Replace(minimal, "heads: 4", "heads: 4\n  seed: 9", 1)+"seed: 9\n").ID()
	if a != b {
		t.Errorf("model.seed written equal to the round seed changes the ID")
	}
}

// TestEveryChangeChangesID changes each field of a spec in turn; every
// change must give a new ID, different from all the others.
func TestEveryChangeChangesID(t *testing.T) {
	ckpt, _ := cid.Decode(ckptCID)
	data, _ := cid.Decode(dataCID)
	changes := map[string]func(s *Spec){
		"version":            func(s *Spec) { s.Version = 3 },
		"name":               func(s *Spec) { s.Name = "other" },
		"description":        func(s *Spec) { s.Description = "other" },
		"model.arch":         func(s *Spec) { s.Model.Arch, s.Model.Heads, s.Model.Hidden, s.Model.Window = ArchMLP, 0, 64, 8 },
		"model.vocab":        func(s *Spec) { s.Model.Vocab = 512 },
		"model.ctx":          func(s *Spec) { s.Model.Ctx = 32 },
		"model.dim":          func(s *Spec) { s.Model.Dim = 64 },
		"model.layers":       func(s *Spec) { s.Model.Layers = 3 },
		"model.heads":        func(s *Spec) { s.Model.Heads = 2 },
		"model.seed":         func(s *Spec) { s.Model.Seed = 1 },
		"dataset":            func(s *Spec) { s.Dataset = Dataset{Manifest: data} },
		"inner_steps":        func(s *Spec) { s.InnerSteps = 49 },
		"batch":              func(s *Spec) { s.Batch = 15 },
		"inner.lr":           func(s *Spec) { s.Inner.LR = 0.0060000000000000001 + 1e-12 },
		"inner.warmup":       func(s *Spec) { s.Inner.Warmup = 1 },
		"inner.beta1":        func(s *Spec) { s.Inner.Beta1 = 0.8 },
		"inner.beta2":        func(s *Spec) { s.Inner.Beta2 = 0.999 },
		"inner.eps":          func(s *Spec) { s.Inner.Eps = 1e-6 },
		"inner.weight_decay": func(s *Spec) { s.Inner.WeightDecay = 0 },
		"inner.clip_norm":    func(s *Spec) { s.Inner.ClipNorm = 0 },
		"outer.lr":           func(s *Spec) { s.Outer.LR = 0.5 },
		"outer.momentum":     func(s *Spec) { s.Outer.Momentum = 0 },
		"codec":              func(s *Spec) { s.Codec = "fp16" },
		"codec parameter":    func(s *Spec) { s.Codec = "topk:k=65" },
		"aggregation":        func(s *Spec) { s.Aggregation = "median" },
		"aggregation param":  func(s *Spec) { s.Aggregation = "trimmed-mean:trim=0.25" },
		"target_samples":     func(s *Spec) { s.TargetSamples = 1601 },
		"deadline":           func(s *Spec) { s.Deadline += time.Millisecond },
		"verification_rate":  func(s *Spec) { s.VerificationRate = 0 },
		"feedback_decay":     func(s *Spec) { s.FeedbackDecay = 0.25 },
		"late_weight":        func(s *Spec) { s.LateWeight = 0.5 },
		"quorum":             func(s *Spec) { s.Quorum = 0.8 },
		"grace":              func(s *Spec) { s.Grace = time.Second },
		"seed":               func(s *Spec) { s.Seed = 1 },
		"trackers: one more": func(s *Spec) { s.Trackers = append(s.Trackers, peerB) },
		"trackers: other":    func(s *Spec) { s.Trackers = []string{peerB} },
		"trackers: order":    func(s *Spec) { s.Trackers = []string{peerB, peerA} },
		"tracker_addrs": func(s *Spec) {
			s.Trackers, s.TrackerAddrs = []string{peerA, peerB}, []string{"/ip4/192.0.2.1/tcp/4001", "/ip4/192.0.2.2/tcp/4001"}
		},
		"tracker_addrs: other": func(s *Spec) {
			s.Trackers, s.TrackerAddrs = []string{peerA, peerB}, []string{"/ip4/192.0.2.1/tcp/4001", "/ip4/192.0.2.3/tcp/4001"}
		},
		"init_checkpoint":      func(s *Spec) { s.InitCheckpoint = ckpt },
		"admission":            func(s *Spec) { s.Admission = AdmissionClosed },
		"seed and model.seed":  func(s *Spec) { s.Seed, s.Model.Seed = 1, 1 },
		"betas swapped values": func(s *Spec) { s.Inner.Beta1, s.Inner.Beta2 = 0.95, 0.9 },
	}
	base := mustParse(t, minimal)
	seen := map[cid.Cid]string{base.ID(): "the base spec"}
	for name, change := range changes {
		s := mustParse(t, minimal)
		change(s)
		if name != "version" {
			if err := s.Validate(); err != nil {
				t.Errorf("%s: changed spec is invalid: %v", name, err)
			}
		}
		id := s.ID()
		if other, dup := seen[id]; dup {
			t.Errorf("%s: same ID as %s", name, other)
		}
		seen[id] = name
	}
}

// TestTrackerGroup: a spec naming a group of trackers with their
// addresses parses, encodes them in its canonical form (so its round ID
// covers them) and parses back; one without addresses keeps the form a
// single tracker's spec always had; addresses must match the trackers.
func TestTrackerGroup(t *testing.T) {
	group := minimal + "tracker_addrs:\n  - /ip4/127.0.0.1/tcp/4001\n  - /ip4/127.0.0.1/tcp/4002\n"
	s := mustParse(t, strings.Replace(group, "trackers:\n", "trackers:\n  - "+peerB+"\n", 1))
	if !s.Group() || len(s.TrackerAddrs) != 2 {
		t.Fatalf("group %v, addresses %v", s.Group(), s.TrackerAddrs)
	}
	if !bytes.Contains(s.Canonical(), []byte(`"tracker_addrs":["/ip4/127.0.0.1/tcp/4001","/ip4/127.0.0.1/tcp/4002"]`)) {
		t.Fatalf("canonical form without the addresses: %s", s.Canonical())
	}
	back, err := Parse(s.Canonical(), "canonical")
	if err != nil {
		t.Fatal(err)
	}
	if back.ID() != s.ID() || !slices.Equal(back.TrackerAddrs, s.TrackerAddrs) {
		t.Fatalf("parsed back to %v (%s), want %v (%s)", back.TrackerAddrs, back.ID(), s.TrackerAddrs, s.ID())
	}
	if !s.IsTracker(peerB) || s.IsTracker("someone") {
		t.Fatal("IsTracker")
	}
	one := mustParse(t, minimal)
	if one.Group() || bytes.Contains(one.Canonical(), []byte("tracker_addrs")) {
		t.Fatalf("a single tracker's spec: %s", one.Canonical())
	}
	s.TrackerAddrs[1] = "127.0.0.1:4002"
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "tracker_addrs[1]") {
		t.Fatalf("a bad address: %v", err)
	}
	s.TrackerAddrs = s.TrackerAddrs[:1]
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "1 addresses for 2 trackers") {
		t.Fatalf("two trackers, one address: %v", err)
	}
}

// TestCanonicalParsesBack checks that the canonical encoding is a spec
// that parses to an equal Spec.
func TestCanonicalParsesBack(t *testing.T) {
	for _, name := range examples {
		s := parseFile(t, name)
		back, err := Parse(s.Canonical(), "canonical")
		if err != nil {
			t.Fatalf("%s: canonical encoding does not parse: %v", name, err)
		}
		back.file, back.lines = s.file, s.lines
		if !reflect.DeepEqual(back, s) {
			t.Errorf("%s: parsed back to\n%+v\nwant\n%+v", name, back, s)
		}
	}
}

// TestCanonicalOfGoSpec checks that a spec built in Go with non-canonical
// spellings encodes like the parsed one.
func TestCanonicalOfGoSpec(t *testing.T) {
	parsed := mustParse(t, minimal+"codec: topk:k=8\naggregation: norm-clip\n")
	s := Defaults()
	s.Model = Model{Arch: ArchGPT, Vocab: 256, Ctx: 64, Dim: 128, Layers: 2, Heads: 4}
	s.Dataset = Dataset{Builtin: true}
	s.InnerSteps, s.Inner.LR, s.TargetSamples, s.Deadline = 50, 0.006, 1600, 2*time.Minute
	s.Trackers = []string{peerACID}
	s.Codec, s.Aggregation = "topk:k=8", "norm-clip"
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.ID() != parsed.ID() {
		t.Errorf("Go spec:\n%s\nparsed spec:\n%s", s.Canonical(), parsed.Canonical())
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		src  string
		want []string // each a line of the error, in order
	}{
		{"unknown field", minimal + "bacth: 8\n", []string{"round.yaml:15: bacth: unknown field (did you mean batch?)"}},
		{"unknown nested field", strings.Replace(minimal, "heads: 4", "heads: 4\n  hiden: 3", 1),
			[]string{"round.yaml:7: model.hiden: unknown field (did you mean hidden?)"}},
		{"unknown far field", minimal + "colour: blue\n", []string{"round.yaml:15: colour: unknown field (known: version, name,"}},
		{"negative lr", strings.Replace(minimal, "lr: 0.006", "lr: -0.1", 1), []string{"round.yaml:10: inner.lr: must be positive, got -0.1"}},
		{"type error", strings.Replace(minimal, "inner_steps: 50", "inner_steps: ten", 1), []string{`round.yaml:8: inner_steps: want an integer, got the string "ten"`}},
		{"float for an integer", strings.Replace(minimal, "ctx: 64", "ctx: 64.0", 1), []string{"round.yaml:3: model.ctx: want an integer, got the number 64.0"}},
		{"missing fields", "model:\n  arch: gpt\nname: x\n", []string{
			"round.yaml:1: model.ctx: missing (required)",
			"round.yaml:1: model.dim: missing (required)",
			"round.yaml:1: model.layers: missing (required)",
			"round.yaml:1: model.heads: missing (required for arch gpt)",
			"round.yaml: dataset: missing (required)",
			"round.yaml: inner_steps: missing (required)",
			"round.yaml: inner: missing (required)",
			"round.yaml: target_samples: missing (required)",
			"round.yaml: deadline: missing (required)",
			"round.yaml: trackers: missing (required)",
		}},
		{"mlp fields", strings.Replace(minimal, "arch: gpt", "arch: mlp", 1), []string{
			"round.yaml:1: model.hidden: missing (required for arch mlp)",
			"round.yaml:1: model.window: missing (required for arch mlp)",
			"round.yaml:6: model.heads: only for arch gpt",
		}},
		{"divisibility", strings.Replace(minimal, "heads: 4", "heads: 3", 1), []string{"round.yaml:6: model.heads: dim 128 is not a multiple of heads 3"}},
		{"duplicate", minimal + "inner_steps: 0\n", []string{"round.yaml:15: inner_steps: duplicate field (first at line 8)"}},
		{"deadline without unit", strings.Replace(minimal, "deadline: 2m", "deadline: 120", 1), []string{"round.yaml:12: deadline: want a duration with a unit, such as 90s or 5m, got the integer 120"}},
		{"negative deadline", strings.Replace(minimal, "deadline: 2m", "deadline: -2m", 1), []string{"round.yaml:12: deadline: must be positive and at most 24h0m0s, got -2m0s"}},
		{"bad duration", strings.Replace(minimal, "deadline: 2m", "deadline: soon", 1), []string{`round.yaml:12: deadline: want a duration such as 90s or 5m, got "soon"`}},
		{"rate", minimal + "verification_rate: 1.5\n", []string{"round.yaml:15: verification_rate: must be in [0, 1], got 1.5"}},
		{"nan", minimal + "verification_rate: .nan\n", []string{"round.yaml:15: verification_rate: must be a finite number, got .nan"}},
		{"decay", minimal + "feedback_decay: 1.25\n", []string{"round.yaml:15: feedback_decay: must be in [0, 1], got 1.25"}},
		{"quorum", minimal + "quorum: 1.5\n", []string{"round.yaml:15: quorum: must be in (0, 1], got 1.5"}},
		{"grace", minimal + "grace: 1h\n", []string{"round.yaml:15: grace: must be from 0 to the deadline (2m0s), got 1h0m0s"}},
		{"late weight", minimal + "late_weight: 2\n", []string{"round.yaml:15: late_weight: must be in [0, 1], got 2"}},
		{"negative decay", minimal + "feedback_decay: -0.5\n", []string{"round.yaml:15: feedback_decay: must be in [0, 1], got -0.5"}},
		{"target below one unit", strings.Replace(minimal, "target_samples: 1600", "target_samples: 100", 1),
			[]string{"round.yaml:11: target_samples: must be at least one work unit, inner_steps × batch = 800, got 100"}},
		{"codec", minimal + "codec: topk:k=9000\n", []string{"round.yaml:15: codec: topk: k=9000 out of range [1, chunk=4096]"}},
		{"unknown codec", minimal + "codec: zip\n", []string{`round.yaml:15: codec: unknown codec "zip"`}},
		{"rule", minimal + "aggregation: krum\n", []string{`round.yaml:15: aggregation: unknown aggregation rule "krum"`}},
		{"dataset", strings.Replace(minimal, "dataset: builtin", "dataset: ./corpus", 1), []string{`round.yaml:7: dataset: want builtin or a dataset manifest CID: "./corpus" is not a CID`}},
		{"dataset CIDv0", strings.Replace(minimal, "dataset: builtin", "dataset: QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", 1),
			[]string{"round.yaml:7: dataset: CID QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG is not CIDv1 raw sha2-256"}},
		{"tracker", minimal + "  - QmFoo\n  - " + peerACID + "\n", []string{
			`round.yaml:15: trackers[1]: "QmFoo" is not a peer ID`,
			"round.yaml:16: trackers[2]: the same peer as trackers[0]",
		}},
		{"tracker CID of other codec", strings.Replace(minimal, peerA, dataCID, 1), []string{"round.yaml:14: trackers[0]: " + `"` + dataCID + `" is a CID but not a peer ID`}},
		{"trackers not a list", strings.Replace(minimal, "trackers:\n  - ", "trackers: ", 1), []string{"round.yaml:13: trackers: want a list of peer IDs, got the string"}},
		{"empty trackers", strings.Replace(minimal, "trackers:\n  - "+peerA, "trackers: []", 1), []string{"round.yaml:13: trackers: missing (at least one tracker peer ID)"}},
		{"admission", minimal + "admission: invite\n", []string{`round.yaml:15: admission: want open or closed, got "invite"`}},
		{"version", "version: 3\n" + minimal, []string{"round.yaml:1: version: unsupported spec version 3"}},
		{"version 1", "version: 1\n" + minimal, []string{"round.yaml:1: version: spec version 1 is a round of shoal before version 2's fused multiply-add"}},
		{"betas", strings.Replace(minimal, "lr: 0.006", "lr: 0.006\n  betas: [0.9, 1]", 1), []string{"round.yaml:11: inner.betas: beta2 must be in [0, 1), got 1"}},
		{"betas length", strings.Replace(minimal, "lr: 0.006", "lr: 0.006\n  betas: 0.9", 1), []string{"round.yaml:11: inner.betas: want a list of two numbers [beta1, beta2], got the number 0.9"}},
		{"model not a mapping", strings.Replace(minimal, "model:\n", "model: gpt-tiny\n_:\n", 1), []string{
			`round.yaml:1: model: want a mapping of fields, got the string "gpt-tiny"`,
			"round.yaml:2: _: unknown field",
		}},
		{"name with newline", minimal + "name: \"a\\nb\"\n", []string{"round.yaml:15: name: holds the control character U+000A"}},
		{"alias", "x: &a 1\n" + minimal + "batch: *a\n", []string{"round.yaml:1: x: unknown field", "round.yaml:16: batch: aliases are not supported"}},
		{"merge key", "<<: {batch: 8}\n" + minimal, []string{"round.yaml:1: <<: merge keys are not supported"}},
		{"syntax", minimal + "batch: [1\n", []string{"round.yaml:15: invalid YAML: "}},
		{"tab indentation", strings.Replace(minimal, "  ctx: 64", "\tctx: 64", 1), []string{"round.yaml:3: invalid YAML: "}},
		{"two documents", minimal + "---\nbatch: 8\n", []string{"round.yaml:15: more than one YAML document"}},
		{"empty", "# nothing here\n", []string{"round.yaml: empty spec"}},
		{"list at top", "- a\n", []string{"round.yaml:1: want a mapping of fields at the top level, got a list"}},
		{"too large", minimal + "description: " + strings.Repeat("x", MaxSpecSize) + "\n", []string{"round.yaml: spec is larger than the limit of 1048576 bytes"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse([]byte(c.src), "round.yaml")
			if err == nil {
				t.Fatalf("no error; spec %+v", s)
			}
			if s != nil {
				t.Errorf("spec returned with an error")
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(c.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(got), len(c.want), err)
			}
			for i := range min(len(got), len(c.want)) {
				if !strings.HasPrefix(got[i], c.want[i]) {
					t.Errorf("problem %d:\ngot  %s\nwant %s…", i, got[i], c.want[i])
				}
			}
			if ps := Problems(err); len(ps) != len(got) {
				t.Errorf("Problems returned %d, the error has %d lines", len(ps), len(got))
			}
		})
	}
}

// TestErrorsInLineOrder checks that problems of different kinds (decoding
// and validation) come out sorted by line, those without a line last.
func TestErrorsInLineOrder(t *testing.T) {
	src := `name: "bad\u0001"
model: {arch: gpt, ctx: 0, dim: 64, layers: 1, heads: 5, colour: red}
dataset: builtin
inner_steps: x
inner: {lr: 0}
deadline: 0s
`
	_, err := Parse([]byte(src), "r.yaml")
	ps := Problems(err)
	var lines []string
	for _, p := range ps {
		lines = append(lines, fmt.Sprintf("%d:%s", p.Line, p.Field))
	}
	want := []string{"1:name", "2:model.colour", "2:model.ctx", "2:model.heads", "4:inner_steps", "5:inner.lr", "6:deadline", "0:target_samples", "0:trackers"}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("problems %v,\nwant %v\n%v", lines, want, err)
	}
	for _, p := range ps {
		if p.File != "r.yaml" {
			t.Errorf("problem without the file name: %v", p)
		}
	}
}

func TestValidateGoSpec(t *testing.T) {
	s := Defaults()
	err := s.Validate()
	var fields []string
	for _, p := range Problems(err) {
		if p.File != "" || p.Line != 0 {
			t.Errorf("problem of a Go spec has a place: %v", p)
		}
		fields = append(fields, p.Field)
	}
	want := []string{"model.arch", "model.ctx", "model.dim", "model.layers", "dataset", "inner_steps", "inner.lr", "target_samples", "deadline", "trackers"}
	if !reflect.DeepEqual(fields, want) {
		t.Errorf("problems of the defaults alone: %v\nwant %v\n%v", fields, want, err)
	}

	s = mustParse(t, minimal)
	s.Model.Heads, s.Inner.Eps = 0, 0
	err = s.Validate()
	if got := err.Error(); got != "round.yaml:6: model.heads: must be in [1, dim=128], got 0\nround.yaml:9: inner.eps: must be in (0, 1], got 0" {
		t.Errorf("Validate of a changed parsed spec:\n%v", got)
	}
	if p := s.Problem("inner.betas", "too %s", "big"); p.Error() != "round.yaml:9: inner.betas: too big" {
		t.Errorf("Problem for an unwritten field placed at %q, want the line of inner", p)
	}
}

// TestTokenizerField: a spec may name its tokenizer by CID; the round ID
// covers it, a byte-level spec's ID does not change, and the model's
// vocabulary must be larger than the bytes'.
func TestTokenizerField(t *testing.T) {
	base := Defaults()
	base.Model = Model{Arch: ArchGPT, Vocab: 50257, Ctx: 16, Dim: 8, Layers: 1, Heads: 2}
	base.Dataset = Dataset{Builtin: true}
	base.InnerSteps, base.Batch, base.TargetSamples = 1, 1, 1
	base.Inner.LR = 0.01
	base.Deadline = time.Minute
	base.Trackers = []string{"12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NY"}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
	withTok := *base
	withTok.Tokenizer = content.Sum([]byte("a tokenizer"))
	if err := withTok.Validate(); err != nil {
		t.Fatal(err)
	}
	if withTok.ID().Equals(base.ID()) {
		t.Fatal("the round ID does not cover the tokenizer")
	}
	if strings.Contains(string(base.Canonical()), "tokenizer") {
		t.Fatal("a byte-level spec's canonical form names a tokenizer")
	}
	back, err := Parse(withTok.Canonical(), "canonical")
	if err != nil || !back.Tokenizer.Equals(withTok.Tokenizer) || !back.ID().Equals(withTok.ID()) {
		t.Fatalf("the canonical form reads back as %v (%v)", back, err)
	}
	small := withTok
	small.Model.Vocab = 256
	if err := small.Validate(); err == nil || !strings.Contains(err.Error(), "model.vocab") {
		t.Fatalf("a byte vocabulary with a tokenizer: %v", err)
	}
}
