package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-network/shoal/checkpoint/content"
)

const roundTestdata = "../../tracker/round/testdata"

// execRound runs `round ARGS...` on a command built directly.
func execRound(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := newCmdRound(&factory{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	cmd.SetArgs(args)
	cmd.SetOut(&errb) // usage and help, if any, are not data
	cmd.SetErr(&errb)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err = cmd.Execute()
	return out.String(), errb.String(), err
}

func parseRoundValidate(t *testing.T, args ...string) (*roundValidateOptions, error) {
	t.Helper()
	var got *roundValidateOptions
	f := &factory{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	cmd := newCmdRoundValidate(f, func(o *roundValidateOptions) error { got = o; return nil })
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	err := cmd.Execute()
	return got, err
}

func TestRoundValidateFlags(t *testing.T) {
	o, err := parseRoundValidate(t, "--json", "r.yaml")
	if err != nil || o == nil || o.File != "r.yaml" || !o.JSON {
		t.Errorf("options %+v, error %v", o, err)
	}
	for _, args := range [][]string{{}, {"a.yaml", "b.yaml"}, {"--jsn", "a.yaml"}} {
		if _, err := parseRoundValidate(t, args...); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func TestRoundValidateSummary(t *testing.T) {
	file := filepath.Join(roundTestdata, "round.yaml")
	stdout, stderr, err := execRound(t, "", "validate", file)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	want := readGoldenID(t, "round.yaml")
	for _, line := range []string{
		"round         " + want,
		"name          gpt-tiny on the built-in task",
		"model         gpt: vocab 256, ctx 64, dim 128, layers 2, heads 4",
		"start         fresh, initialisation seed 1",
		"dataset       the built-in task",
		"work unit     50 inner steps × batch 16 = 800 samples",
		"step          closes at 3200 samples (4 units) or after 2m0s",
		"inner         AdamW lr 0.006, warm-up 100, betas 0.9/0.95, eps 1e-08, weight decay 0.1, clip norm 1",
		"outer         Nesterov lr 0.7, momentum 0.5",
		"codec         topk:chunk=4096,k=64,values=2bit, error feedback decay 0.25",
		"aggregation   norm-clip:max=median,partial=true,screen=true",
		"verification  5% of units computed twice",
		"admission     open",
		"trackers      12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NY",
	} {
		if !strings.Contains(stdout, line+"\n") {
			t.Errorf("summary lacks %q:\n%s", line, stdout)
		}
	}
	if n := strings.Count(stdout, "\n"); n > 24 {
		t.Errorf("summary of %d lines does not fit a screen", n)
	}
	if stderr != "" {
		t.Errorf("stderr: %q", stderr)
	}
}

// readGoldenID returns the round ID testdata/golden/ids.txt gives a file.
func readGoldenID(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(roundTestdata, "golden", "ids.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			return f[1]
		}
	}
	t.Fatalf("no golden ID for %s", name)
	return ""
}

func TestRoundValidateJSON(t *testing.T) {
	for _, name := range []string{"builtin-gpt-tiny.yaml", "corpus.yaml", "closed.yaml"} {
		file := filepath.Join(roundTestdata, name)
		stdout, stderr, err := execRound(t, "", "validate", "--json", file)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, stderr)
		}
		var got struct {
			ID   string          `json:"id"`
			Spec json.RawMessage `json:"spec"`
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("%s: stdout is not JSON: %v\n%s", name, err, stdout)
		}
		if want := readGoldenID(t, name); got.ID != want {
			t.Errorf("%s: id %s, want %s", name, got.ID, want)
		}
		// The spec is the canonical encoding, byte for byte: it hashes to
		// the ID.
		if id := content.Sum(got.Spec); id.String() != got.ID {
			t.Errorf("%s: spec in the output hashes to %s, not its id %s", name, id, got.ID)
		}
	}
}

func TestRoundValidateStdin(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(roundTestdata, "closed.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	stdout, _, err := execRound(t, string(b), "validate", "-")
	if err != nil || !strings.Contains(stdout, readGoldenID(t, "closed.yaml")) {
		t.Errorf("validate -: %v\n%s", err, stdout)
	}
}

func TestRoundValidateErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`model:
  arch: gpt
  ctx: 64
  dim: 130
  layers: 2
  heads: 4
dataset: builtin
inner_steps: 50
inner:
  lr: -0.1
  colour: red
target_samples: 1600
deadline: 2m
trackers: [QmNotAPeer]
`), 0o644)
	stdout, _, err := execRound(t, "", "validate", bad)
	if err == nil {
		t.Fatal("no error for an invalid spec")
	}
	if stdout != "" {
		t.Errorf("stdout holds %q for an invalid spec", stdout)
	}
	want := bad + ` is not a valid round spec (4 problems):
` + bad + `:6: model.heads: dim 130 is not a multiple of heads 4
` + bad + `:10: inner.lr: must be positive, got -0.1
` + bad + `:11: inner.colour: unknown field (known: lr, warmup, betas, eps, weight_decay, clip_norm)
` + bad + `:14: trackers[0]: "QmNotAPeer" is not a peer ID (neither a base58btc multihash nor a libp2p-key CID)`
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}

	one := filepath.Join(dir, "one.yaml")
	os.WriteFile(one, []byte("name: x\n"), 0o644)
	_, _, err = execRound(t, "", "validate", one)
	if err == nil || !strings.HasPrefix(err.Error(), one+" is not a valid round spec (7 problems):\n"+one+": model: missing") {
		t.Errorf("missing fields: %v", err)
	}

	missing := filepath.Join(dir, "missing.yaml")
	if _, _, err := execRound(t, "", "validate", missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}

	// A problem found only by the implementations (the byte-level data
	// needs 256 token IDs) is reported at its line too.
	small := filepath.Join(dir, "small.yaml")
	b, _ := os.ReadFile(filepath.Join(roundTestdata, "builtin-gpt-tiny.yaml"))
	os.WriteFile(small, bytes.Replace(b, []byte("  ctx: 64\n"), []byte("  ctx: 64\n  vocab: 100\n"), 1), 0o644)
	_, _, err = execRound(t, "", "validate", small)
	if err == nil || err.Error() != small+":7: model.vocab: the data is byte-level: vocab must be at least 256, got 100" {
		t.Errorf("deep check: %v", err)
	}
}
