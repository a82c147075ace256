package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
)

// runCheckpoint runs `shoal checkpoint args...` through the command alone
// and returns stdout, stderr and the error.
func runCheckpoint(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	f := &factory{Out: &out, Err: &errb}
	cmd := newCmdCheckpoint(f)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetOut(&errb)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errb.String(), err
}

func TestCheckpointFlags(t *testing.T) {
	f := &factory{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	parse := func(args ...string) *checkpointOptions {
		t.Helper()
		co := &checkpointOptions{}
		var got *checkpointImportOptions
		cmd := newCmdCheckpointImport(f, co, func(o *checkpointImportOptions) error { got = o; return nil })
		cmd.Flags().StringVar(&co.Store, "store", "", "")
		cmd.SetArgs(args)
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		if got.File != "m.safetensors" {
			t.Errorf("file %q", got.File)
		}
		return got.checkpointOptions
	}
	if o := parse("m.safetensors", "--store", "/x/y"); o.Store != "/x/y" {
		t.Errorf("--store %q", o.Store)
	}
	t.Setenv("SHOAL_HOME", "/home/s")
	if dir, _ := parse("m.safetensors").storeDir(); dir != filepath.Join("/home/s", "checkpoints") {
		t.Errorf("default store with SHOAL_HOME: %s", dir)
	}
	t.Setenv("SHOAL_HOME", "")
	t.Setenv("HOME", "/home/u")
	if dir, _ := parse("m.safetensors").storeDir(); dir != filepath.Join("/home/u", ".shoal", "checkpoints") {
		t.Errorf("default store: %s", dir)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"show"}, "accepts 1 arg"},
		{[]string{"export", "head"}, "--out"},
		{[]string{"import", "x.safetensors", "--model", "resnet"}, "--model"},
		{[]string{"import", "x.safetensors", "--label", "a b"}, "--label"},
		{[]string{"verify", "a", "b"}, "at most 1 arg"},
		{[]string{"gc", "--keep", "-1"}, "--keep"},
		{[]string{"ls", "--store", t.TempDir()}, "no checkpoint store"},
	} {
		_, _, err := runCheckpoint(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to mention %q", c.args, err, c.want)
		}
	}
}

// TestCheckpointCommands drives the commands end to end: a model's
// parameters written by shoal train's writer are imported, listed, shown,
// verified, exported and re-imported, and damage makes verify fail.
func TestCheckpointCommands(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	cfg, _ := gradient.Preset("gpt-tiny")
	cfg.Seed = 3
	m, err := gradient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	trained := filepath.Join(dir, "trained.safetensors")
	if err := writeParams(trained, m, &trainOptions{Model: "gpt-tiny"}); err != nil {
		t.Fatal(err)
	}

	stdout, _, err := runCheckpoint(t, "import", trained, "--store", store, "--label", "base")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(stdout)
	if !strings.HasPrefix(id, "bafkrei") {
		t.Fatalf("import printed %q, want a CID", stdout)
	}

	stdout, _, err = runCheckpoint(t, "ls", "--store", store)
	if err != nil || !strings.Contains(stdout, id) || !strings.Contains(stdout, "base") {
		t.Fatalf("ls: %v\n%s", err, stdout)
	}
	stdout, _, err = runCheckpoint(t, "ls", "--store", store, "--json")
	var entries []checkpointEntry
	if err != nil || json.Unmarshal([]byte(stdout), &entries) != nil || len(entries) != 1 {
		t.Fatalf("ls --json: %v\n%s", err, stdout)
	}
	if e := entries[0]; e.ID != id || e.Params != int64(gradient.NumParams(m)) || e.Meta["model"] != "gpt-tiny" || len(e.Labels) != 1 {
		t.Errorf("ls --json entry %+v", e)
	}

	stdout, _, err = runCheckpoint(t, "show", "base", "--store", store, "--json")
	var shown checkpointEntry
	if err != nil || json.Unmarshal([]byte(stdout), &shown) != nil {
		t.Fatalf("show --json: %v\n%s", err, stdout)
	}
	if shown.ID != id || len(shown.Tensors) != len(m.Params()) || shown.ChunkSize != checkpoint.ChunkSize {
		t.Errorf("show --json: %+v", shown)
	}
	stdout, _, err = runCheckpoint(t, "show", id, "--store", store)
	if err != nil || !strings.Contains(stdout, "transformer.h.1.attn.c_attn.weight  [128 384]") {
		t.Errorf("show: %v\n%s", err, stdout)
	}

	if stdout, _, err = runCheckpoint(t, "verify", "--store", store); err != nil || !strings.Contains(stdout, ": ok") {
		t.Errorf("verify of an intact store: %v\n%s", err, stdout)
	}

	// Export, and import again: the same parameters, the same checkpoint.
	out := filepath.Join(dir, "out", "model.safetensors")
	if _, _, err := runCheckpoint(t, "export", "base", "--out", out, "--store", store); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	ts, meta, err := checkpoint.ReadSafetensors(bytes.NewReader(b), int64(len(b)))
	if err != nil || meta["format"] != "pt" || len(ts) != len(m.Params()) {
		t.Fatalf("exported file: %d tensors, metadata %v, %v", len(ts), meta, err)
	}
	for i, p := range m.Params() {
		if ts[i].Name != p.Name || !equalBits(ts[i].Data, p.Data) {
			t.Fatalf("exported %s differs from the model's %s", ts[i].Name, p.Name)
		}
	}
	stdout, _, err = runCheckpoint(t, "import", out, "--store", store)
	if err != nil || strings.TrimSpace(stdout) != id {
		t.Errorf("re-import gave %q (%v), want %s", stdout, err, id)
	}
	stdout, _, err = runCheckpoint(t, "export", id, "--out", "-", "--store", store)
	if err != nil || stdout != string(b) {
		t.Errorf("export to stdout differs from the file (%v)", err)
	}

	// A file of another model is refused, naming the problem.
	other, _ := gradient.Preset("mlp")
	om, _ := gradient.New(other)
	wrong := filepath.Join(dir, "mlp.safetensors")
	writeParams(wrong, om, &trainOptions{Model: "mlp"})
	_, _, err = runCheckpoint(t, "import", wrong, "--model", "gpt-tiny", "--store", store)
	if err == nil || !strings.Contains(err.Error(), "gpt-tiny") || !strings.Contains(err.Error(), "missing") {
		t.Errorf("import of an mlp as gpt-tiny: %v", err)
	}

	// Labels, pins and gc.
	if _, _, err := runCheckpoint(t, "label", "head", "base", "--store", store); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCheckpoint(t, "pin", "head", "--store", store); err != nil {
		t.Fatal(err)
	}
	stdout, _, err = runCheckpoint(t, "gc", "--keep", "0", "--store", store, "--json")
	var gr gcResult
	if err != nil || json.Unmarshal([]byte(stdout), &gr) != nil || len(gr.Removed) != 0 {
		t.Errorf("gc of a pinned store: %v\n%s", err, stdout)
	}

	// Damage a chunk: verify reports it and fails; ls no longer lists it.
	s, _ := checkpoint.OpenStore(store)
	cid, _ := s.Resolve(id)
	man, _ := s.Manifest(cid)
	chunk := filepath.Join(store, "chunks", man.Chunks[0].String())
	cb, _ := os.ReadFile(chunk)
	cb[100] ^= 4
	os.WriteFile(chunk, cb, 0o644)
	stdout, _, err = runCheckpoint(t, "verify", "base", "--store", store)
	if err == nil || !strings.Contains(stdout, "corrupt chunk "+man.Chunks[0].String()) {
		t.Errorf("verify of a damaged store: %v\n%s", err, stdout)
	}
	stdout, _, err = runCheckpoint(t, "verify", "--store", store, "--json")
	var vr verifyResult
	if err == nil || json.Unmarshal([]byte(stdout), &vr) != nil || len(vr.Damaged) != 1 || vr.Damaged[0].Kind != "corrupt chunk" {
		t.Errorf("verify --json of a damaged store: %v\n%s", err, stdout)
	}
	stdout, stderr, err := runCheckpoint(t, "ls", "--store", store)
	if err != nil || stdout != "" || !strings.Contains(stderr, "no checkpoints") {
		t.Errorf("ls of a damaged store: %v\n%s", err, stdout)
	}
	if _, _, err := runCheckpoint(t, "export", "base", "--out", out, "--store", store); err == nil {
		t.Error("export of a damaged checkpoint succeeded")
	}
}

func equalBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(a[i] != a[i] && b[i] != b[i]) {
			return false
		}
	}
	return true
}

// TestCheckpointMerge: merging a checkpoint with itself gives its CID
// back, as does task arithmetic at weight 0; an average of two models is
// a new checkpoint of the same model; bad arguments say what is wrong.
func TestCheckpointMerge(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	put := func(label, preset string, seed uint64) string {
		t.Helper()
		cfg, _ := gradient.Preset(preset)
		cfg.Seed = seed
		m, err := gradient.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, label+".safetensors")
		if err := writeParams(file, m, &trainOptions{Model: preset}); err != nil {
			t.Fatal(err)
		}
		out, _, err := runCheckpoint(t, "import", file, "--store", store, "--label", label)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	a, b := put("a", "gpt-tiny", 3), put("b", "gpt-tiny", 4)
	put("mlp", "mlp", 3)
	merge := func(args ...string) (string, error) {
		out, _, err := runCheckpoint(t, append([]string{"merge", "--store", store}, args...)...)
		return strings.TrimSpace(out), err
	}
	if got, err := merge("a", "a"); err != nil || got != a {
		t.Fatalf("a merged with itself: %q, %v; want %s", got, err, a)
	}
	if got, err := merge("b", "--base", "a", "--weights", "0"); err != nil || got != a {
		t.Fatalf("a + 0·(b − a): %q, %v; want %s", got, err, a)
	}
	avg, err := merge("a", "b", "--weights", "0.5,0.5", "--label", "avg")
	if err != nil || avg == a || avg == b || !strings.HasPrefix(avg, "bafkrei") {
		t.Fatalf("average of a and b: %q, %v", avg, err)
	}
	if again, _ := merge("a", "b"); again != avg {
		t.Errorf("the default weights (½ each) gave %s, --weights 0.5,0.5 %s", again, avg)
	}
	st, err := checkpoint.OpenStore(store)
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.Resolve("avg")
	if err != nil || id.String() != avg {
		t.Fatalf("label avg: %v, %v", id, err)
	}
	c, err := st.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := st.Get(mustResolve(t, st, "a"))
	cb, _ := st.Get(mustResolve(t, st, "b"))
	for i, x := range c.Params() {
		pa, pb := ca.Params()[i], cb.Params()[i]
		for k, v := range x.Data {
			if want := float32(0.5*float64(pa.Data[k]) + 0.5*float64(pb.Data[k])); v != want {
				t.Fatalf("%s[%d] = %v, want %v", x.Name, k, v, want)
			}
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"a", "b", "--weights", "1"}, "--weights: 1 weights for 2 checkpoints"},
		{[]string{"a", "b", "--weights", "1,x"}, `weight 2, "x", is not a finite number`},
		{[]string{"a", "b", "--weights", "1,NaN"}, "not a finite number"},
		{[]string{"a", "mlp"}, "configuration"},
		{[]string{"a", "nosuch"}, "nosuch"},
		{[]string{"a", "--base", "nosuch"}, "--base"},
		{[]string{"a", "--label", "bad label"}, "--label"},
	} {
		if _, err := merge(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("merge %v: error %v, want it to say %q", c.args, err, c.want)
		}
	}
}

func mustResolve(t *testing.T, st *checkpoint.Store, ref string) cid.Cid {
	t.Helper()
	id, err := st.Resolve(ref)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
