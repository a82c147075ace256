package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoal-network/shoal/node/daemon"
	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/boltstore"
	"github.com/shoal-network/shoal/tracker/dashboard"
)

// TestTrackerFailover runs a round coordinated by a group of three
// trackers (OS processes on 127.0.0.1, a raft group) with four
// volunteers, SIGKILLs the group's leader in the middle of a step and
// never restarts it. It checks that a new leader takes over within 10 s,
// that the round keeps finalising, that no finalised step is lost or
// finalised twice (what the dead leader stored is a prefix of what the
// survivors store, and the survivors store the same), that round status
// shows the group, and that every volunteer ends on the same head, the
// one the surviving trackers stored. Meanwhile the dead tracker is
// replaced (round group remove, then its identity on an empty data
// directory added with round group add and started with --join): the
// replacement catches up from a snapshot and stores the same history.
func TestTrackerFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: runs several processes for a minute")
	}
	dir := t.TempDir()
	e := &e2e{t: t, dir: dir, bin: buildShoal(t, dir, "")}
	defer e.stopAll()

	// Three trackers, each with its identity; the spec names them all,
	// with their addresses.
	const n = 3
	reID := regexp.MustCompile(`(?m)^  - (12D3Koo\w+)`)
	var ids, tdirs, addrs []string
	var deadDir string
	var tmpl string
	for i := range n {
		tdir := filepath.Join(dir, fmt.Sprintf("tracker%d", i+1))
		out, err := exec.Command(e.bin, "round", "init", "--data-dir", tdir).Output()
		if err != nil {
			t.Fatalf("round init: %v", err)
		}
		m := reID.FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("no tracker ID in the template:\n%s", out)
		}
		if i == 0 {
			tmpl = string(out)
		}
		ids, tdirs = append(ids, m[1]), append(tdirs, tdir)
		addrs = append(addrs, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t)))
	}
	spec := tmpl
	for _, r := range [][2]string{
		{"inner_steps: 50 ", "inner_steps: 4 "},
		{"batch: 16 ", "batch: 8 "},
		{"target_samples: 3200 ", "target_samples: 128 "},
		{"verification_rate: 0.05 ", "verification_rate: 0.5 "},
		{"deadline: 2m ", "deadline: 20s "},
		{"codec: topk:chunk=4096,k=64,values=2bit ", "codec: int8 "},
		{"  - " + ids[0] + "\n", "  - " + strings.Join(ids, "\n  - ") + "\n"},
	} {
		if !strings.Contains(spec, r[0]) {
			t.Fatalf("the template has no %q", r[0])
		}
		spec = strings.Replace(spec, r[0], r[1], 1)
	}
	spec += "tracker_addrs:\n  - " + strings.Join(addrs, "\n  - ") + "\n"
	specPath := filepath.Join(dir, "round.yaml")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "group.secret")
	if err := os.WriteFile(secret, []byte("a secret the three trackers share"), 0o600); err != nil {
		t.Fatal(err)
	}
	trackers := make([]*proc, n)
	dashes := make([]string, n)
	for i := range n {
		trackers[i] = e.start(fmt.Sprintf("tracker%d", i+1), e.bin, nil, "round", "start", "--loopback", "--data-dir", tdirs[i],
			"--dashboard-addr", "127.0.0.1:0", "--min-members", "4", "--observer=false", "--listen", addrs[i],
			"--group-secret", secret, "--snapshot-entries", "64", specPath)
	}
	for i := range n {
		dashes[i] = trackers[i].find(t, reDashboard, 30*time.Second)
	}
	var invite string
	for end := time.Now().Add(10 * time.Second); invite == "" && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		invite = strings.TrimSpace(trackers[0].out.String())
	}
	if !strings.HasPrefix(invite, "shoal:") {
		t.Fatalf("no invite on the first tracker's stdout: %q", invite)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alive := map[int]bool{0: true, 1: true, 2: true}
	// leader returns the live tracker that says it leads, and its view.
	leader := func() (int, dashboard.Snapshot) {
		for i := range n {
			if !alive[i] {
				continue
			}
			s, err := getSnapshot(dashes[i])
			if err == nil && s.Group != nil && s.Group.Leader != "" && s.Group.Leader == s.Group.Self {
				return i, s
			}
		}
		return -1, dashboard.Snapshot{}
	}
	var li int
	var ls dashboard.Snapshot
	if err := daemon.WaitFor(ctx, 100*time.Millisecond, func() bool { li, ls = leader(); return li >= 0 }); err != nil {
		t.Fatalf("no leader: %v\n%s", err, tailLines(trackers[0].lines(), 30))
	}
	t.Logf("tracker%d leads in term %d", li+1, ls.Group.Term)

	nodes := map[string]*proc{}
	status := map[string]string{}
	for i := 1; i <= 4; i++ {
		name := fmt.Sprintf("node%d", i)
		p := e.start(name, e.bin, nil, "node", "join", "--loopback", "--cpus", "1", "--data-dir", filepath.Join(dir, name),
			"--status-addr", "127.0.0.1:0", invite)
		nodes[name] = p
		status[name] = p.find(t, reStatus, 60*time.Second)
	}

	// The round runs; the leader is killed in the middle of a step.
	err := daemon.WaitFor(ctx, 100*time.Millisecond, func() bool {
		li, ls = leader()
		return li >= 0 && ls.Step >= 2 && ls.Phase == "open"
	})
	if err != nil {
		t.Fatalf("the round did not reach step 2: %v\nleader stderr:\n%s", err, tailLines(trackers[max(li, 0)].lines(), 40))
	}
	oldTerm, killedStep := ls.Group.Term, ls.Step
	kill(t, trackers[li])
	killedAt := time.Now()
	alive[li] = false
	dead := li
	t.Logf("killed the leader, tracker%d, with SIGKILL in step %d (%s), term %d", li+1, ls.Step, ls.Phase, oldTerm)

	err = daemon.WaitFor(ctx, 50*time.Millisecond, func() bool {
		li, ls = leader()
		return li >= 0 && ls.Group.Term > oldTerm
	})
	took := time.Since(killedAt)
	if err != nil {
		t.Fatalf("no new leader after the leader died: %v", err)
	}
	t.Logf("tracker%d leads in term %d, %.1f s after the leader died", li+1, ls.Group.Term, took.Seconds())
	if took > 10*time.Second {
		t.Errorf("a new leader took over %.1f s after the leader died, want within 10 s", took.Seconds())
	}

	// The round keeps finalising.
	err = daemon.WaitFor(ctx, 200*time.Millisecond, func() bool {
		li, ls = leader()
		return li >= 0 && ls.Step >= killedStep+3
	})
	if err != nil {
		t.Fatalf("the round did not finalise 3 more steps after the failover (at %d): %v\nnew leader stderr:\n%s", ls.Step, err, tailLines(trackers[max(li, 0)].lines(), 40))
	}
	t.Logf("the group finalised up to step %d, %.1f s after the leader died", ls.Step, time.Since(killedAt).Seconds())
	// round status shows the group: its members, the leader, the term,
	// and how far each member is behind (the dead one, ever further).
	out, err := exec.Command(e.bin, "round", "status", dashes[li]).Output()
	if err != nil {
		t.Fatalf("round status: %v", err)
	}
	text := string(out)
	want := fmt.Sprintf("group    3 trackers, term %d, leader %s", ls.Group.Term, ids[li])
	if !strings.Contains(text, want) || !strings.Contains(text, ids[dead]+"  ") || !strings.Contains(text, "entries behind") {
		t.Errorf("round status does not show the group (want %q and each member's lag):\n%s", want, text)
	}
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "group") || strings.HasPrefix(l, "         12D3") {
			t.Logf("round status: %s", l)
		}
	}

	// The dead tracker is replaced: taken out of the group, and its
	// identity started again on an empty data directory, added to the
	// group under a new raft ID; it catches up from a snapshot.
	if out, err := exec.Command(e.bin, "round", "group", "remove", dashes[li], ids[dead]).CombinedOutput(); err != nil {
		t.Fatalf("round group remove: %v\n%s", err, out)
	}
	err = daemon.WaitFor(ctx, 100*time.Millisecond, func() bool {
		s, err := getSnapshot(dashes[li])
		return err == nil && s.Group != nil && len(s.Group.Members) == 2
	})
	if err != nil {
		t.Fatalf("the dead tracker was not removed from the group: %v", err)
	}
	deadDir = tdirs[dead]
	rdir := filepath.Join(dir, "replacement")
	if err := os.MkdirAll(rdir, 0o700); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(tdirs[dead], "tracker.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rdir, "tracker.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	added, err := exec.Command(e.bin, "round", "group", "add", dashes[li], ids[dead]).Output()
	if err != nil {
		t.Fatalf("round group add: %v", err)
	}
	raftID := strings.TrimSpace(string(added))
	repl := e.start("replacement", e.bin, nil, "round", "start", "--loopback", "--data-dir", rdir,
		"--dashboard-addr", "127.0.0.1:0", "--min-members", "4", "--observer=false", "--listen", addrs[dead],
		"--group-secret", secret, "--snapshot-entries", "64", "--join", raftID, specPath)
	rdash := repl.find(t, reDashboard, 30*time.Second)
	var rs dashboard.Snapshot
	err = daemon.WaitFor(ctx, 100*time.Millisecond, func() bool {
		var err error
		rs, err = getSnapshot(rdash)
		_, l := leader()
		return err == nil && rs.Group != nil && rs.Group.Snapshot > 0 && len(rs.Group.Members) == 3 &&
			l.Group != nil && rs.Group.Applied+8 >= l.Group.Commit && rs.Step == l.Step
	})
	if err != nil {
		t.Fatalf("the replacement did not catch up from a snapshot: %+v\n%s", rs.Group, tailLines(repl.lines(), 30))
	}
	t.Logf("the replacement (raft ID %s) caught up from the snapshot at entry %d: applied %d, step %d",
		raftID, rs.Group.Snapshot, rs.Group.Applied, rs.Step)
	trackers[dead], dashes[dead], tdirs[dead] = repl, rdash, rdir
	alive[dead] = true
	before := rs.Step
	err = daemon.WaitFor(ctx, 200*time.Millisecond, func() bool {
		li, ls = leader()
		return li >= 0 && ls.Step >= before+1
	})
	if err != nil {
		t.Fatalf("the round did not go on with the replacement: %v", err)
	}

	// Stop the trackers; the volunteers settle on the last Final.
	for i := range n {
		if alive[i] {
			trackers[i].cmd.Process.Signal(os.Interrupt)
			<-trackers[i].done
		}
	}
	var heads map[string]daemon.Status
	err = daemon.WaitFor(ctx, 200*time.Millisecond, func() bool {
		heads = map[string]daemon.Status{}
		for name, url := range status {
			st, err := getNodeStatus(url)
			if err != nil {
				return false
			}
			heads[name] = st
		}
		for _, st := range heads {
			if st.Step != heads["node1"].Step || st.Head != heads["node1"].Head {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("the volunteers do not hold the same head: %+v", heads)
	}
	e.stopAll()

	stored := map[int]*tracker.State{}
	for i := range n + 1 {
		d := deadDir
		if i < n {
			d = tdirs[i]
		}
		db, err := boltstore.OpenBolt(filepath.Join(d, "tracker.db"))
		if err != nil {
			t.Fatal(err)
		}
		st, err := db.Load()
		db.Close()
		if err != nil || st == nil {
			t.Fatalf("tracker%d's stored state: %v", i+1, err)
		}
		stored[i] = st
	}
	var survivors []int
	for i := range n {
		if i != dead {
			survivors = append(survivors, i)
		}
	}
	t.Logf("stored finalised steps: survivors %d and %d, replacement %d, dead leader %d",
		len(stored[survivors[0]].Finals), len(stored[survivors[1]].Finals), len(stored[dead].Finals), len(stored[n].Finals))
	a, b := stored[survivors[0]].Finals, stored[survivors[1]].Finals
	if len(a) != len(b) {
		t.Errorf("the survivors stored %d and %d finalised steps", len(a), len(b))
	}
	for s := range min(len(a), len(b)) {
		if a[s].Step != uint64(s) || !a[s].Checkpoint.Equals(b[s].Checkpoint) {
			t.Errorf("step %d: the survivors stored %s (step %d) and %s", s, a[s].Checkpoint, a[s].Step, b[s].Checkpoint)
		}
	}
	old := stored[n].Finals // what the dead leader stored
	if r := stored[dead].Finals; len(r) != len(a) {
		t.Errorf("the replacement stored %d finalised steps, the survivors %d", len(r), len(a))
	} else {
		for s := range r {
			if !r[s].Checkpoint.Equals(a[s].Checkpoint) {
				t.Errorf("step %d: the replacement stored %s, the survivors %s", s, r[s].Checkpoint, a[s].Checkpoint)
			}
		}
	}
	if len(old) > len(a) {
		t.Errorf("the dead leader stored %d finalised steps, the survivors only %d", len(old), len(a))
	}
	for s := range min(len(old), len(a)) {
		if !old[s].Checkpoint.Equals(a[s].Checkpoint) {
			t.Errorf("step %d: the dead leader stored %s, the survivors %s: finalised twice", s, old[s].Checkpoint, a[s].Checkpoint)
		}
	}
	if len(old) < int(killedStep) {
		t.Errorf("the dead leader stored %d finalised steps, but it was at step %d", len(old), killedStep)
	}
	for name, st := range heads {
		switch {
		case st.Step == 0 || st.Step > uint64(len(a)):
			t.Errorf("%s ended at C_%d; the survivors finalised %d steps", name, st.Step, len(a))
		case a[st.Step-1].Checkpoint.String() != st.Head:
			t.Errorf("%s holds C_%d = %s, the survivors finalised %s", name, st.Step, st.Head, a[st.Step-1].Checkpoint)
		}
	}
	t.Logf("every volunteer ends on C_%d = %s, as the surviving trackers stored (%d finalised steps; the dead leader had stored %d)",
		heads["node1"].Step, heads["node1"].Head, len(a), len(old))
}
