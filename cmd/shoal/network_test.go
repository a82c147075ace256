package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// runCLI runs the command line and returns the exit code, stdout and stderr.
func runShoal(args ...string) (int, string, string) {
	var out, errw bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errw)
	return code, out.String(), errw.String()
}

// TestHelpEverywhere: every command and subcommand has help that runs,
// names its usage, and says something beyond its one-line summary.
func TestHelpEverywhere(t *testing.T) {
	root := newRootCmd(&factory{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			p := append(append([]string(nil), path...), sub.Name())
			code, out, errw := runShoal(append(p, "--help")...)
			if code != 0 {
				t.Errorf("shoal %s --help: exit %d: %s", strings.Join(p, " "), code, errw)
			}
			if !strings.Contains(out+errw, "Usage:") || sub.Short == "" {
				t.Errorf("shoal %s --help: no usage or summary", strings.Join(p, " "))
			}
			if sub.Runnable() && len(sub.Long) < 80 {
				t.Errorf("shoal %s: its long help is too thin to be useful: %q", strings.Join(p, " "), sub.Long)
			}
			walk(sub, p)
		}
	}
	walk(root, nil)
}

// TestNetworkCommandErrors: bad input to the networked commands gets a
// clear error naming what was wrong, before anything starts.
func TestNetworkCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("model:\n  arch: gpt\n  ctx: -1\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"node", "join", "not-an-invite"}, `invite: must start with "shoal:"`},
		{[]string{"node", "join", "shoal:bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"}, "no peer addresses"},
		{[]string{"node", "join", "shoal:nonsense@/ip4/127.0.0.1/tcp/1"}, "round ID"},
		{[]string{"node", "join", "shoal:bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku@/ip4/127.0.0.1/tcp/1"}, "/p2p/"},
		{[]string{"node", "join", "--max-upload", "lots", "x"}, "not a size in bytes"},
		{[]string{"node", "join", "--role", "boss", "x"}, "--role must be worker or observer"},
		{[]string{"node", "join", "--token", "abc", "shoal:bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku@/ip4/127.0.0.1/tcp/1/p2p/12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NY", "--data-dir", filepath.Join(dir, "n")}, "--token"},
		{[]string{"round", "start", filepath.Join(dir, "missing.yaml")}, "missing.yaml"},
		{[]string{"round", "start", "--data-dir", filepath.Join(dir, "t"), bad}, "bad.yaml:3"},
		{[]string{"round", "start", "--spares", "1.5", bad}, "--spares 1.5"},
		{[]string{"round", "invite", bad, "--peer", "x"}, "bad.yaml"},
		{[]string{"round", "status", "shoal:bafk@/ip4/1.2.3.4/tcp/1"}, "give its URL"},
		{[]string{"round", "status", "--timeout", "2s", "127.0.0.1:1"}, "cannot reach the dashboard"},
		{[]string{"demo", "--workers", "0"}, "--workers must be between 1 and 64"},
		{[]string{"demo", "--target", "0.5"}, "--target must be at least 1"},
		{[]string{"dataset", "cid", filepath.Join(dir, "nothing")}, "nothing"},
	} {
		code, _, errw := runShoal(c.args...)
		if code == 0 || !strings.Contains(errw, c.want) {
			t.Errorf("shoal %s: exit %d, stderr %q; want an error containing %q", strings.Join(c.args, " "), code, errw, c.want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1500": 1500, "64kB": 64000, "2MB": 2e6, "1GiB": 1 << 30, "512MiB": 512 << 20, "0": 0, "1.5M": 1.5e6} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "lots", "1XB", "1e30"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}
