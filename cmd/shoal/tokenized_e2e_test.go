package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-network/shoal/node/daemon"
)

// writeTestBPE writes GPT-2-format vocabulary files of the 256 byte
// symbols and a few merges, and returns their paths.
func writeTestBPE(t *testing.T, dir string, extra ...string) (string, string) {
	t.Helper()
	// GPT-2's printable spelling of each byte (see gradient/tokenizer).
	vocab := map[string]int{}
	n := 0
	for b := range 256 {
		r := rune(b)
		if !(b >= '!' && b <= '~' || b >= 0xa1 && b <= 0xac || b >= 0xae && b <= 0xff) {
			r = rune(256 + n)
			n++
		}
		vocab[string(r)] = b
	}
	g := string(rune(256 + 32)) // the space: Ġ
	merges := append([]string{"e a", "a e", g + " b", "i o", "o u"}, extra...)
	for _, m := range merges {
		a, b, _ := strings.Cut(m, " ")
		vocab[a+b] = len(vocab)
	}
	js, _ := json.Marshal(vocab)
	enc, mer := filepath.Join(dir, "encoder.json"), filepath.Join(dir, "vocab.bpe")
	if err := os.WriteFile(enc, js, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mer, []byte("#version: 0.2\n"+strings.Join(merges, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return enc, mer
}

// TestTokenizedRound runs a round whose spec names a BPE tokenizer by
// CID, as OS processes on 127.0.0.1: round start serves the tokenizer
// from its files, the volunteers fetch it by CID, and the round trains
// and finalises steps on the tokens (the observer measuring held-out loss
// on them); a round start with other files is refused.
func TestTokenizedRound(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: runs several processes for half a minute")
	}
	dir := t.TempDir()
	e := &e2e{t: t, dir: dir, bin: buildShoal(t, dir, "")}
	defer e.stopAll()
	enc, mer := writeTestBPE(t, dir)
	cmd := exec.Command(e.bin, "tokenize", "--vocab", enc, "--merges", mer, "a bee")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if _, err := cmd.Output(); err != nil {
		t.Fatalf("tokenize: %v: %s", err, stderr.String())
	}
	tokID := strings.Fields(stderr.String())[1]

	tdir := filepath.Join(dir, "tracker")
	tmpl, err := exec.Command(e.bin, "round", "init", "--data-dir", tdir).Output()
	if err != nil {
		t.Fatalf("round init: %v", err)
	}
	spec := string(tmpl)
	for _, r := range [][2]string{
		{"vocab: 256 ", "vocab: 300 "},
		{"# init_checkpoint: bafk...", "tokenizer: " + tokID},
		{"inner_steps: 50 ", "inner_steps: 5 "},
		{"target_samples: 3200 ", "target_samples: 160 "},
		{"deadline: 2m ", "deadline: 30s "},
		{"codec: topk:chunk=4096,k=64,values=2bit ", "codec: int8 "},
	} {
		if !strings.Contains(spec, r[0]) {
			t.Fatalf("the template has no %q", r[0])
		}
		spec = strings.Replace(spec, r[0], r[1], 1)
	}
	specPath := filepath.Join(dir, "round.yaml")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	start := []string{"round", "start", "--loopback", "--data-dir", tdir, "--dashboard-addr", "127.0.0.1:0",
		"--min-members", "2", "--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t))}

	// Another tokenizer's files are refused.
	otherEnc, otherMer := writeTestBPE(t, t.TempDir(), "u i")
	if out, err := exec.Command(e.bin, append(start, "--vocab", otherEnc, "--merges", otherMer, specPath)...).CombinedOutput(); err == nil || !strings.Contains(string(out), "the spec names") {
		t.Fatalf("round start with another tokenizer: %v\n%s", err, out)
	}

	tr := e.start("tracker", e.bin, nil, append(start, "--vocab", enc, "--merges", mer, specPath)...)
	dash := tr.find(t, reDashboard, 60*time.Second)
	var invite string
	for end := time.Now().Add(10 * time.Second); invite == "" && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		invite = strings.TrimSpace(tr.out.String())
	}
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("node%d", i)
		p := e.start(name, e.bin, nil, "node", "join", "--loopback", "--cpus", "1", "--data-dir", filepath.Join(dir, name),
			"--status-addr", "127.0.0.1:0", invite)
		p.find(t, reStatus, time.Minute)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var last float64
	err = daemon.WaitFor(ctx, 300*time.Millisecond, func() bool {
		s, err := getSnapshot(dash)
		if err != nil || s.Step < 3 {
			return false
		}
		last = lastLoss(s)
		return last > 0
	})
	if err != nil {
		var tails strings.Builder
		for _, p := range e.procs {
			fmt.Fprintf(&tails, "%s stderr tail:\n%s\n", p.name, tailLines(p.lines(), 12))
		}
		t.Fatalf("the tokenized round did not finalise three steps with a held-out loss: %v\n%s", err, tails.String())
	}
	t.Logf("tokenized round at step 3 or later, held-out loss %.4f", last)
}
