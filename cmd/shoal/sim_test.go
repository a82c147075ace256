package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// parseSim parses argv for `shoal sim` into options without running.
func parseSim(t *testing.T, args ...string) (*simOptions, error) {
	t.Helper()
	var got *simOptions
	f := &factory{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	root := newRootCmd(f)
	for _, c := range root.Commands() {
		if c.Name() == "sim" {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(newCmdSim(f, func(_ context.Context, o *simOptions) error { got = o; return nil }))
	root.SetArgs(append([]string{"sim"}, args...))
	err := root.Execute()
	return got, err
}

func TestSimFlags(t *testing.T) {
	o, err := parseSim(t, "--peers", "1000", "--churn", "0.2/h", "--byzantine", "0.05", "--links", "home", "--seed", "9")
	if err != nil {
		t.Fatal(err)
	}
	if o.Scenario != "demo" || o.Peers != 1000 || o.Churn != "0.2/h" || o.Byzantine != 0.05 || !o.ByzSet || o.Links != "home" || o.Seed != 9 || !o.SeedSet {
		t.Errorf("options %+v", o)
	}
	ov := o.overrides()
	if ov.Byzantine == nil || *ov.Byzantine != 0.05 || ov.Seed == nil || *ov.Seed != 9 {
		t.Errorf("overrides %+v", ov)
	}
	o, err = parseSim(t, "planet-10k")
	if err != nil || o.Scenario != "planet-10k" || o.SeedSet || o.ByzSet {
		t.Errorf("scenario argument: %+v, %v", o, err)
	}
}

func TestSimFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--churn", "often"}, "--churn"},
		{[]string{"--byzantine", "0.7"}, "--byzantine"},
		{[]string{"--behaviour", "rude"}, "--behaviour"},
		{[]string{"--links", "fibre"}, "--links"},
		{[]string{"--training", "quantum"}, "--training"},
		{[]string{"--peers", "-3"}, "--peers"},
		{[]string{"a", "b"}, "accepts at most 1 arg"},
	} {
		_, err := parseSim(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to mention %q", c.args, err, c.want)
		}
	}
}

// TestSimReportReproducible runs `shoal sim` twice with the same scenario
// and seed: the report directories are the same, byte for byte.
func TestSimReportReproducible(t *testing.T) {
	dir := t.TempDir()
	var outs []string
	for i := range 2 {
		out := filepath.Join(dir, []string{"a", "b"}[i])
		var stdout, stderr bytes.Buffer
		code := run([]string{"sim", "demo", "--steps", "3", "--peers", "12", "--churn", "1/h", "--out", out}, nil, &stdout, &stderr)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		if !strings.Contains(stdout.String(), "3 of 3 steps finalised") || !strings.Contains(stderr.String(), "report in") {
			t.Fatalf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
		outs = append(outs, out)
	}
	files, err := os.ReadDir(outs[0])
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range files {
		names[f.Name()] = true
		a, _ := os.ReadFile(filepath.Join(outs[0], f.Name()))
		b, err := os.ReadFile(filepath.Join(outs[1], f.Name()))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs (%v)", f.Name(), err)
		}
	}
	for _, want := range []string{"report.json", "summary.txt", "loss.svg", "step-duration.svg", "contributors.svg", "bytes-per-peer.svg", "utilisation.svg"} {
		if !names[want] {
			t.Errorf("no %s in the report (have %v)", want, names)
		}
	}
}

func TestSimList(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"sim", "--list"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"demo", "planet-10k", "byzantine-10pct", "churn-heavy", "home-volunteers-1k", "open-internet"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--list does not show %s:\n%s", want, stdout.String())
		}
	}
}

// TestSimExpectFails: `shoal sim` prints each expectation of a scenario
// with PASS or FAIL and what the run measured, and exits non-zero, naming
// what failed, when one fails.
func TestSimExpectFails(t *testing.T) {
	dir := t.TempDir()
	scenario := func(name, limit, expect string) string {
		p := filepath.Join(dir, name+".yaml")
		yaml := `name: ` + name + `
limit: ` + limit + `
seed: 3
peers: 6
steps: 3
training: cost
round:
  model: {arch: mlp, vocab: 256, ctx: 16, dim: 16, layers: 1, hidden: 64, window: 4}
  dataset: builtin
  inner_steps: 5
  batch: 4
  inner: {lr: 0.01}
  target_samples: 80
  deadline: 5m
  seed: 3
compute:
  train: 30s
  update_bytes: 64KiB
expect:
` + expect
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name, limit, expect string
		code                int
		stdout              []string
		stderr              string
	}{
		{"met", "2h", "  steps_finalised: 3\n  no_honest_excluded: true\n", 0,
			[]string{"expectations (0 of 3 failed)", "PASS  steps_finalised", "got: 3"}, "report in"},
		{"unmet", "20s", "  steps_finalised: 100%\n  no_honest_excluded: true\n", 1,
			[]string{"expectations (1 of 3 failed)", "FAIL  steps_finalised", "at least 3 of 3", "got: 0", "PASS  no_honest_excluded"},
			"error: scenario unmet: 1 of 3 expectations failed: steps_finalised (want at least 3 of 3, got 0)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"sim", scenario(c.name, c.limit, c.expect), "--out", filepath.Join(dir, "out-"+c.name)}
			var stdout, stderr bytes.Buffer
			code := run(args, nil, &stdout, &stderr)
			if code != c.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, stdout.String(), stderr.String())
			}
			for _, w := range c.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout does not say %q:\n%s", w, stdout.String())
				}
			}
			if !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("stderr does not say %q:\n%s", c.stderr, stderr.String())
			}
		})
	}
}
