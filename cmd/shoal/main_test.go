package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
)

// parseTrain parses argv for `shoal train` into options without running.
func parseTrain(t *testing.T, args ...string) (*trainOptions, error) {
	t.Helper()
	var got *trainOptions
	f := &factory{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	root := newRootCmd(f)
	// Replace the real train command with one that captures its options.
	for _, c := range root.Commands() {
		if c.Name() == "train" {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(newCmdTrain(f, func(o *trainOptions) error { got = o; return nil }))
	root.SetArgs(append([]string{"train"}, args...))
	err := root.Execute()
	return got, err
}

func TestTrainFlags(t *testing.T) {
	o, err := parseTrain(t, "--model", "mlp", "--steps", "50", "--batch", "8", "--lr", "0.01", "--seed", "9", "--out", "x.st")
	if err != nil {
		t.Fatal(err)
	}
	if o.Model != "mlp" || o.Steps != 50 || o.Batch != 8 || o.LR != 0.01 || o.Seed != 9 || o.Out != "x.st" || o.Data != "builtin" {
		t.Errorf("options %+v", o)
	}
	if o.Warmup != 5 || o.EvalEvery != 10 {
		t.Errorf("derived defaults: warmup %d eval-every %d", o.Warmup, o.EvalEvery)
	}
}

func TestTrainFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--steps", "0"}, "--steps"},
		{[]string{"--model", "resnet"}, "unknown model"},
		{[]string{"--batch", "-1"}, "--batch"},
		{[]string{"--lr", "0"}, "learning rate"},
		{[]string{"--steps", "ten"}, "invalid argument"},
		{[]string{"extra"}, "unknown command"},
	} {
		_, err := parseTrain(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to mention %q", c.args, err, c.want)
		}
	}
}

func TestEnvFlags(t *testing.T) {
	t.Setenv("SHOAL_STEPS", "17")
	t.Setenv("SHOAL_MODEL", "mlp")
	o, err := parseTrain(t, "--model", "gpt-tiny")
	if err != nil {
		t.Fatal(err)
	}
	if o.Steps != 17 || o.Model != "gpt-tiny" {
		t.Errorf("env: steps %d model %s (flags must win over the environment)", o.Steps, o.Model)
	}
	t.Setenv("SHOAL_BATCH", "many")
	if _, err := parseTrain(t); err == nil || !strings.Contains(err.Error(), "SHOAL_BATCH") {
		t.Errorf("bad env value: %v", err)
	}
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, nil, &out, &errb)
	return out.String(), errb.String(), code
}

// TestTrainRun trains the small mlp on the built-in task for a few steps,
// end to end through the command, and checks the JSON result and the
// written parameters.
func TestTrainRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "params.safetensors")
	stdout, stderr, code := runCLI(t, "train", "--model", "mlp", "--steps", "30", "--batch", "8", "--json", "--out", out, "--log-format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r trainResult
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("stdout is not the JSON result: %v\n%s", err, stdout)
	}
	if r.EntropyFloor == nil || r.BigramLoss == nil || r.UnigramLoss == nil {
		t.Fatal("built-in task figures missing")
	}
	if !(r.EvalLoss < r.InitialLoss-0.5) {
		t.Errorf("eval loss %g did not fall from %g", r.EvalLoss, r.InitialLoss)
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("--log-format json wrote a non-JSON line: %q", line)
		}
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	ts, meta, err := checkpoint.ReadSafetensors(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if meta["shoal.model"] != "mlp" || len(ts) == 0 {
		t.Errorf("written file: %d tensors, metadata %v", len(ts), meta)
	}
}

func TestTrainDataErrors(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "blob.bin")
	os.WriteFile(bin, []byte{0, 1, 2, 0, 255}, 0o644)
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	for _, c := range []struct{ path, want string }{
		{filepath.Join(dir, "missing"), "no such file"},
		{empty, "no text files"},
		{bin, "binary file"},
	} {
		_, stderr, code := runCLI(t, "train", "--data", c.path, "--steps", "1")
		if code == 0 || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, c.path) {
			t.Errorf("--data %s: exit %d, stderr %q; want an error naming the path and %q", c.path, code, stderr, c.want)
		}
		if strings.Contains(stderr, "panic") {
			t.Errorf("--data %s panicked", c.path)
		}
	}
}

func TestVersion(t *testing.T) {
	stdout, _, code := runCLI(t, "version", "--json")
	var v versionInfo
	if code != 0 || json.Unmarshal([]byte(stdout), &v) != nil || v.Kernels == "" {
		t.Errorf("version --json: exit %d, %q", code, stdout)
	}
}

// TestTrainTeacher distils a gpt-tiny teacher, as --out writes it, into a
// gpt-tiny student for a few steps through the command, and checks that
// a missing, garbled or mismatched teacher and bad distillation flags are
// refused with errors that say what is wrong.
func TestTrainTeacher(t *testing.T) {
	dir := t.TempDir()
	writeTeacher := func(name string, cfg gradient.ModelConfig) string {
		t.Helper()
		m, err := gradient.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := writeParams(path, m, &trainOptions{Model: "gpt-tiny"}); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tiny, _ := gradient.Preset("gpt-tiny")
	tiny.Seed = 5
	teacher := writeTeacher("teacher.safetensors", tiny)
	args := []string{"train", "--model", "gpt-tiny", "--steps", "3", "--batch", "2", "--eval-batches", "2", "--json"}
	stdout, stderr, code := runCLI(t, append(args, "--teacher", teacher, "--temperature", "3", "--mix", "0.25")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r trainResult
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("stdout is not the JSON result: %v\n%s", err, stdout)
	}
	if d := r.Distill; d == nil || d.Teacher != teacher || d.Temperature != 3 || d.Mix != 0.25 || d.TeacherConfig != tiny || d.TeacherParams != r.Params {
		t.Errorf("distillation in the result: %+v", r.Distill)
	}
	if math.IsNaN(r.EvalLoss) || !(r.EvalLoss < r.InitialLoss) {
		t.Errorf("eval loss %g from %g", r.EvalLoss, r.InitialLoss)
	}

	garbled := filepath.Join(dir, "garbled.safetensors")
	os.WriteFile(garbled, []byte("not a safetensors file"), 0o644)
	otherVocab := tiny
	otherVocab.Vocab = 300
	shortCtx := tiny
	shortCtx.Ctx = 32
	mlp, _ := gradient.Preset("mlp")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--teacher", filepath.Join(dir, "missing")}, []string{"--teacher", "missing", "no such file"}},
		{[]string{"--teacher", garbled}, []string{"--teacher", garbled}},
		{[]string{"--teacher", writeTeacher("vocab.safetensors", otherVocab)}, []string{"vocab.safetensors", "vocabulary has 300 tokens, the student's 256"}},
		{[]string{"--teacher", writeTeacher("ctx.safetensors", shortCtx)}, []string{"ctx.safetensors", "context of 32 tokens is shorter than the student's 64"}},
		{[]string{"--teacher", writeTeacher("mlp.safetensors", mlp)}, []string{"mlp.safetensors", "teacher's architecture is mlp"}},
		{[]string{"--teacher", teacher, "--temperature", "0"}, []string{"--temperature", "temperature must be in (0, 100]"}},
		{[]string{"--teacher", teacher, "--mix", "1.5"}, []string{"--mix", "mix must be in [0, 1]"}},
		{[]string{"--mix", "0.3"}, []string{"need --teacher"}},
	} {
		_, stderr, code := runCLI(t, append(args, c.args...)...)
		for _, w := range c.want {
			if code == 0 || !strings.Contains(stderr, w) {
				t.Errorf("%v: exit %d, stderr %q; want an error mentioning %q", c.args, code, stderr, w)
			}
		}
		if strings.Contains(stderr, "panic") {
			t.Errorf("%v panicked", c.args)
		}
	}
}
