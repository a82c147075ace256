package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A round whose model cannot fit in the memory of a machine is refused by
// validate, at the model's line, instead of dying when it starts.
func TestValidateRefusesModelTooBigForMemory(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(roundTestdata, "builtin-gpt-tiny.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// 64 blocks of width 8192: about 52 billion parameters, more than a
	// terabyte of weights and optimizer state.
	huge := filepath.Join(dir, "huge.yaml")
	os.WriteFile(huge, bytes.Replace(bytes.Replace(b, []byte("  dim: 128\n"), []byte("  dim: 8192\n"), 1),
		[]byte("  layers: 2\n"), []byte("  layers: 64\n"), 1), 0o644)
	stdout, _, err := execRound(t, "", "validate", huge)
	if err == nil {
		t.Fatalf("a model of 52 billion parameters was accepted:\n%s", stdout)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, huge+":4: model: ") || !strings.Contains(msg, "memory") || strings.Contains(msg, "\n") {
		t.Errorf("error %q, want one problem at %s:4: model: … memory …", msg, huge)
	}

	// --max-memory sets the limit: gpt-tiny fits the default and 1 GiB but
	// not 1 MiB.
	tiny := filepath.Join(roundTestdata, "builtin-gpt-tiny.yaml")
	for _, args := range [][]string{{"validate", tiny}, {"validate", "--max-memory", "1GiB", tiny}} {
		if _, _, err := execRound(t, "", args...); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
	_, _, err = execRound(t, "", "validate", "--max-memory", "1MiB", tiny)
	if err == nil || !strings.HasPrefix(err.Error(), tiny+":4: model: ") || !strings.Contains(err.Error(), "1.0 MiB") {
		t.Errorf("gpt-tiny in 1 MiB: %v", err)
	}
}
