package simulations

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-network/shoal/simulations/engine"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the transcript files")

// TestTranscripts replays the scenarios in testdata/transcripts. Each file
// is a list of commands, each followed by "----" and the output it must
// give (the protocol's decisions in order, with virtual times), in the
// manner of etcd raft's datadriven tests:
//
//	cluster workers=3 units=4 rate=0.5 seed=5
//	run steps=2
//	kill peer-01
//	restart peer-01
//	kill-tracker
//	restart-tracker
//	partition peer-02=1 peer-03=1
//	heal
//	wait 10s
//	ledger
//	heads
//
// go test -run TestTranscripts -rewrite regenerates the outputs; review
// the diff like code.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/transcripts/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runTranscript(t, f) })
	}
}

type transcriptCase struct {
	cmd  string
	line int
	want string
}

func parseTranscript(t *testing.T, path string) []transcriptCase {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cases []transcriptCase
	sc := bufio.NewScanner(bytes.NewReader(b))
	n := 0
	for sc.Scan() {
		n++
		l := sc.Text()
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		c := transcriptCase{cmd: l, line: n}
		if !sc.Scan() || sc.Text() != "----" {
			t.Fatalf("%s:%d: want ---- after the command", path, n)
		}
		n++
		var out []string
		for sc.Scan() {
			n++
			if sc.Text() == "" {
				break
			}
			out = append(out, sc.Text())
		}
		c.want = strings.Join(out, "\n")
		cases = append(cases, c)
	}
	return cases
}

func runTranscript(t *testing.T, path string) {
	cases := parseTranscript(t, path)
	var c *engine.Cluster
	var log []string
	var buf strings.Builder
	for i := range cases {
		tc := &cases[i]
		fields := strings.Fields(tc.cmd)
		args := map[string]string{}
		for _, f := range fields[1:] {
			k, v, _ := strings.Cut(f, "=")
			args[k] = v
		}
		num := func(k string, def int) int {
			v, ok := args[k]
			if !ok {
				return def
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s:%d: %s=%q: %v", path, tc.line, k, v, err)
			}
			return n
		}
		log = log[:0]
		var out []string
		fail := func(err error) {
			if err != nil {
				t.Fatalf("%s:%d: %s: %v", path, tc.line, tc.cmd, err)
			}
		}
		switch fields[0] {
		case "cluster":
			spec := testSpec(num("units", 4))
			spec.VerificationRate = float64(num("rate", 0)) / 100
			seed := uint64(num("seed", 1))
			var liars map[string]Behaviour
			if liar := args["liar"]; liar != "" {
				b, err := ParseBehaviour(args["behaviour"])
				fail(err)
				liars = map[string]Behaviour{liar: b}
			}
			cfg := testConfig(t, spec, seed)
			cfg.Trace = func(l string) {
				if !strings.Contains(l, " train ") && !strings.Contains(l, " agreed") {
					log = append(log, l)
				}
			}
			c = newCluster(t, cfg, num("workers", 3), liars)
		case "run":
			target := finalised(c) + num("steps", 1)
			fail(c.RunUntil(func() bool { return finalised(c) >= target }, time.Hour))
		case "wait":
			d, err := time.ParseDuration(fields[1])
			fail(err)
			if err := c.RunFor(d); err != nil && !engine.IsTimeout(err) {
				fail(err)
			}
		case "kill":
			c.Kill(fields[1])
		case "restart":
			fail(c.Restart(fields[1]))
		case "kill-tracker":
			c.KillTracker()
		case "restart-tracker":
			fail(c.RestartTracker())
		case "partition":
			g := map[string]int{}
			for k, v := range args {
				n, _ := strconv.Atoi(v)
				g[k] = n
			}
			c.Partition(g)
		case "heal":
			c.Heal()
		case "ledger":
			led := c.Tracker().Ledger()
			for _, p := range sortedKeys(led) {
				e := led[p]
				out = append(out, fmt.Sprintf("%s units=%d samples=%d verified=%d checks=%d mismatches=%d excluded=%v %s",
					p, e.Units, e.Samples, e.Verified, e.Checks, e.Mismatches, e.Excluded, e.Reason))
			}
		case "heads":
			for _, p := range c.Nodes() {
				s, h := c.Node(p).Head()
				out = append(out, fmt.Sprintf("%s C_%d=%s", p, s, h))
			}
			if tr := c.Tracker(); tr != nil {
				s, h := tr.Head()
				_, ph := tr.Step()
				out = append(out, fmt.Sprintf("tracker C_%d=%s %s", s, h, ph))
			}
		default:
			t.Fatalf("%s:%d: unknown command %q", path, tc.line, fields[0])
		}
		out = append(slices.Clone(log), out...)
		got := strings.Join(out, "\n")
		if *rewrite {
			tc.want = got
		} else if got != tc.want {
			t.Errorf("%s:%d: %s: output differs (seed %d)\n--- got\n%s\n--- want\n%s", path, tc.line, tc.cmd, c.Seed(), got, tc.want)
		}
	}
	if *rewrite {
		buf.WriteString(transcriptHeader(path))
		for _, tc := range cases {
			fmt.Fprintf(&buf, "%s\n----\n", tc.cmd)
			if tc.want != "" {
				buf.WriteString(tc.want + "\n")
			}
			buf.WriteString("\n")
		}
		if err := os.WriteFile(path, []byte(buf.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// transcriptHeader keeps a file's leading comment lines.
func transcriptHeader(path string) string {
	b, _ := os.ReadFile(path)
	var h strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		h.WriteString(l + "\n")
	}
	if h.Len() > 0 {
		h.WriteString("\n")
	}
	return h.String()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
