package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// parseInto runs a command whose run function only records its options,
// so flags and arguments are checked without starting anything.
func parseInto(t *testing.T, cmd *cobra.Command, args ...string) error {
	t.Helper()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs(args)
	return cmd.Execute()
}

// TestNetworkCommandOptions parses the networked commands' argv into
// their options through the run-function seam, without running them.
func TestNetworkCommandOptions(t *testing.T) {
	f := &factory{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}

	var join *nodeJoinOptions
	err := parseInto(t, newCmdNodeJoin(f, func(_ context.Context, o *nodeJoinOptions) error { join = o; return nil }),
		"shoal:bafk@/ip4/127.0.0.1/tcp/1/p2p/x", "--cpus", "2", "--role", "observer", "--max-upload", "1MB", "--token", "t", "--loopback")
	if err != nil {
		t.Fatal(err)
	}
	if join.Invite != "shoal:bafk@/ip4/127.0.0.1/tcp/1/p2p/x" || join.CPUs != 2 || join.Role != "observer" || join.Token != "t" ||
		join.DataDir != "shoal-node" || join.Wait != 2*time.Minute || !join.net.Loopback || join.net.MaxUpload != 1_000_000 {
		t.Errorf("node join options: %+v", join)
	}
	for _, bad := range [][]string{{"inv", "--role", "leader"}, {"inv", "--cpus", "-1"}, {}} {
		join = nil
		err := parseInto(t, newCmdNodeJoin(f, func(_ context.Context, o *nodeJoinOptions) error { join = o; return nil }), bad...)
		if err == nil || join != nil {
			t.Errorf("node join %q: error %v, ran %v", bad, err, join != nil)
		}
	}

	var start *roundStartOptions
	err = parseInto(t, newCmdRoundStart(f, func(_ context.Context, o *roundStartOptions) error { start = o; return nil }),
		"round.yaml", "--data-dir", "d", "--observer=false", "--min-members", "3", "--spares", "0.25", "--data", "corpus")
	if err != nil {
		t.Fatal(err)
	}
	if start.File != "round.yaml" || start.DataDir != "d" || start.Observer || start.MinMembers != 3 || start.Spares != 0.25 ||
		start.Data != "corpus" || start.DashboardAddr != "127.0.0.1:8080" {
		t.Errorf("round start options: %+v", start)
	}

	var initO *roundInitOptions
	if err := parseInto(t, newCmdRoundInit(f, func(o *roundInitOptions) error { initO = o; return nil }), "--out", "r.yaml"); err != nil {
		t.Fatal(err)
	}
	if initO.Out != "r.yaml" || initO.DataDir != "shoal-tracker" {
		t.Errorf("round init options: %+v", initO)
	}

	var inv *roundInviteOptions
	if err := parseInto(t, newCmdRoundInvite(f, func(o *roundInviteOptions) error { inv = o; return nil }),
		"round.yaml", "--peer", "12D3KooW", "--expires", "1h"); err != nil {
		t.Fatal(err)
	}
	if inv.File != "round.yaml" || inv.Peer != "12D3KooW" || inv.Expires != time.Hour {
		t.Errorf("round invite options: %+v", inv)
	}
	err = parseInto(t, newCmdRoundInvite(f, func(*roundInviteOptions) error { t.Error("ran without --peer"); return nil }), "round.yaml")
	if err == nil || !strings.Contains(err.Error(), "peer") {
		t.Errorf("round invite without --peer: %v", err)
	}

	var st *roundStatusOptions
	if err := parseInto(t, newCmdRoundStatus(f, func(_ context.Context, o *roundStatusOptions) error { st = o; return nil }),
		"127.0.0.1:8080", "--json", "--timeout", "3s"); err != nil {
		t.Fatal(err)
	}
	if st.Target != "127.0.0.1:8080" || !st.JSON || st.Timeout != 3*time.Second {
		t.Errorf("round status options: %+v", st)
	}
}
