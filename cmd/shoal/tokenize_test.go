package main

import (
	"bytes"
	"testing"
)

func TestTokenizeBytes(t *testing.T) {
	var out, errb bytes.Buffer
	f := &factory{Out: &out, Err: &errb}
	cmd := newCmdTokenize(f)
	cmd.SetArgs([]string{"Hi!"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "72 105 33\n" {
		t.Fatalf("tokenize Hi! = %q", out.String())
	}
	out.Reset()
	cmd = newCmdTokenize(f)
	cmd.SetArgs([]string{"--decode", "72 105 33"})
	if err := cmd.Execute(); err != nil || out.String() != "Hi!" {
		t.Fatalf("decode = %q, %v", out.String(), err)
	}
	cmd = newCmdTokenize(f)
	cmd.SetArgs([]string{"--decode", "72 300"})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	if err := cmd.Execute(); err == nil {
		t.Fatal("decoded 300 as a byte")
	}
	cmd = newCmdTokenize(f)
	cmd.SetArgs([]string{"--vocab", "encoder.json", "x"})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	if err := cmd.Execute(); err == nil {
		t.Fatal("--vocab without --merges was accepted")
	}
}
