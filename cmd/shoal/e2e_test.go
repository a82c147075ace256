package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-network/shoal/node/daemon"
	"github.com/shoal-network/shoal/tracker/boltstore"
	"github.com/shoal-network/shoal/tracker/dashboard"
	"github.com/shoal-network/shoal/tracker/round"
)

// proc is a shoal process of the end-to-end test, its stderr kept.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	err  []string
	out  strings.Builder
	done chan struct{}
}

func (p *proc) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.err...)
}

// find waits for a line of stderr matching re and returns its first group.
func (p *proc) find(t *testing.T, re *regexp.Regexp, wait time.Duration) string {
	t.Helper()
	end := time.Now().Add(wait)
	for time.Now().Before(end) {
		for _, l := range p.lines() {
			if m := re.FindStringSubmatch(l); m != nil {
				return m[1]
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before printing %s; stderr:\n%s", p.name, re, strings.Join(p.lines(), "\n"))
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not print %s within %v; stderr:\n%s", p.name, re, wait, strings.Join(p.lines(), "\n"))
	return ""
}

type e2e struct {
	t     *testing.T
	bin   string
	fault string
	dir   string
	procs []*proc
}

func (e *e2e) start(name, bin string, env []string, args ...string) *proc {
	e.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = &p.out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.err = append(p.err, sc.Text())
			p.mu.Unlock()
		}
		cmd.Wait()
		close(p.done)
	}()
	e.procs = append(e.procs, p)
	return p
}

func (e *e2e) stopAll() {
	for _, p := range e.procs {
		if p.cmd.Process != nil {
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range e.procs {
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
}

func kill(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// getJSON reads url+"api/status" into v.
func getJSON(url string, v any) error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url + "api/status")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func getSnapshot(url string) (dashboard.Snapshot, error) {
	var s dashboard.Snapshot
	return s, getJSON(url, &s)
}

func getNodeStatus(url string) (daemon.Status, error) {
	var s daemon.Status
	return s, getJSON(url, &s)
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func buildShoal(t *testing.T, dir string, tags string) string {
	t.Helper()
	out := filepath.Join(dir, "shoal")
	args := []string{"build", "-o", out}
	if tags != "" {
		out += "-" + tags
		args = []string{"build", "-tags", tags, "-o", out}
	}
	args = append(args, ".")
	cmd := exec.Command("go", args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
}

var (
	reDashboard = regexp.MustCompile(`dashboard: (http://\S+/)`)
	reStatus    = regexp.MustCompile(`status: (http://\S+/)`)
)

// TestEndToEnd runs a round as separate OS processes on 127.0.0.1: one
// `shoal round start` (tracker and observer) and four `shoal node join`,
// plus a fifth node built with fault injection that corrupts its updates.
// It checks that the round reaches its target loss; that every node ends
// on the tracker's checkpoint; that a node killed with SIGKILL mid-step
// and restarted rejoins within two steps; that the tracker killed with
// SIGKILL and restarted continues with no finalised step lost; that the
// faulty node is caught by replication and excluded, visibly on the
// dashboard; and, when a browser is installed, that the dashboard renders
// the loss chart and the peers in a real headless browser.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: runs several processes for a minute or two")
	}
	dir := t.TempDir()
	e := &e2e{t: t, dir: dir, bin: buildShoal(t, dir, ""), fault: buildShoal(t, dir, "shoalfault")}
	defer e.stopAll()

	// The round: gpt-tiny on the built-in task, small units, half of them
	// replicated so that the faulty node is checked soon.
	tdir := filepath.Join(dir, "tracker")
	init := exec.Command(e.bin, "round", "init", "--data-dir", tdir)
	tmpl, err := init.Output()
	if err != nil {
		t.Fatalf("round init: %v", err)
	}
	spec := string(tmpl)
	for _, r := range [][2]string{
		{"inner_steps: 50 ", "inner_steps: 10 "},
		{"target_samples: 3200 ", "target_samples: 800 "},
		{"verification_rate: 0.05 ", "verification_rate: 0.5 "},
		{"deadline: 2m ", "deadline: 20s "},
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
	parsed, err := round.Parse([]byte(spec), specPath)
	if err != nil {
		t.Fatal(err)
	}
	_, _, floor := daemon.BuiltinData()
	target := 1.3 * floor

	tport := freePort(t)
	trackerArgs := []string{"round", "start", "--loopback", "--data-dir", tdir, "--dashboard-addr", "127.0.0.1:0",
		"--min-members", "4", "--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", tport), specPath}
	tr := e.start("tracker", e.bin, nil, trackerArgs...)
	dash := tr.find(t, reDashboard, 30*time.Second)
	var invite string
	for end := time.Now().Add(10 * time.Second); invite == "" && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		invite = strings.TrimSpace(tr.out.String())
	}
	if !strings.HasPrefix(invite, "shoal:") {
		t.Fatalf("no invite on the tracker's stdout: %q", invite)
	}

	nodes := map[string]*proc{}
	status := map[string]string{}
	startNode := func(name, bin string, env ...string) {
		p := e.start(name, bin, env, "node", "join", "--loopback", "--cpus", "1", "--data-dir", filepath.Join(dir, name),
			"--status-addr", "127.0.0.1:0", invite)
		nodes[name] = p
		status[name] = p.find(t, reStatus, 60*time.Second)
	}
	for i := 1; i <= 4; i++ {
		startNode(fmt.Sprintf("node%d", i), e.bin)
	}
	startNode("faulty", e.fault, "SHOAL_FAULT=corrupt-updates")

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	snap := func() dashboard.Snapshot {
		s, err := getSnapshot(dash)
		if err != nil {
			t.Logf("dashboard: %v", err)
		}
		return s
	}
	waitStep := func(n uint64, what string) dashboard.Snapshot {
		t.Helper()
		var s dashboard.Snapshot
		err := daemon.WaitFor(ctx, 200*time.Millisecond, func() bool { s = snap(); return s.Step >= n })
		if err != nil {
			t.Fatalf("%s: the round did not reach step %d (at %d): %v\ntracker stderr tail:\n%s", what, n, s.Step, err, tailLines(tr.lines(), 30))
		}
		return s
	}

	// 1. A node killed with SIGKILL mid-step rejoins within two steps.
	s := waitStep(3, "warm-up")
	err = daemon.WaitFor(ctx, 20*time.Millisecond, func() bool { s = snap(); return s.Phase == "open" })
	if err != nil {
		t.Fatal(err)
	}
	kill(t, nodes["node2"])
	killedAt := s.Step
	t.Logf("killed node2 with SIGKILL in step %d (%s)", killedAt, s.Phase)
	time.Sleep(2 * time.Second)
	startNode("node2", e.bin)
	restartedAt := snap().Step
	err = daemon.WaitFor(ctx, 200*time.Millisecond, func() bool {
		st, err := getNodeStatus(status["node2"])
		return err == nil && st.Step >= restartedAt && st.Units > 0
	})
	if err != nil {
		t.Fatalf("node2 did not rejoin: %v", err)
	}
	if now := snap().Step; now > restartedAt+2 {
		t.Errorf("node2 restarted in step %d and rejoined (holding the head and training) only by step %d", restartedAt, now)
	}

	// 2. The tracker killed with SIGKILL and restarted loses no
	// finalised step.
	s = waitStep(killedAt+4, "before the tracker crash")
	kill(t, tr)
	before := s.Step
	t.Logf("killed the tracker with SIGKILL at step %d", before)
	time.Sleep(time.Second)
	tr = e.start("tracker", e.bin, nil, trackerArgs...)
	dash = tr.find(t, reDashboard, 30*time.Second)
	if s = snap(); s.Step < before {
		t.Fatalf("after its restart the tracker is at step %d, before the crash it was at %d", s.Step, before)
	}
	// The dashboard keeps the round's history across the restart.
	if len(s.Loss) == 0 || s.Loss[0].Step > 1 {
		t.Errorf("after the restart the dashboard's loss curve starts at %v", s.Loss)
	}
	waitStep(before+2, "after the tracker restart")

	// 3. The round reaches its target loss; the faulty node is excluded.
	var excluded dashboard.PeerInfo
	err = daemon.WaitFor(ctx, 500*time.Millisecond, func() bool {
		s = snap()
		reached := false
		for _, p := range s.Loss {
			if p.Eval > 0 && p.Eval <= target {
				reached = true
			}
		}
		caught := false
		for _, p := range s.Peers {
			if p.State == "excluded" {
				caught, excluded = true, p
			}
		}
		return reached && caught
	})
	if err != nil {
		t.Fatalf("target %.4f not reached or faulty node not excluded by step %d: last loss %v, peers %+v", target, s.Step, lastLoss(s), s.Peers)
	}
	faultyStatus, _ := getNodeStatus(status["faulty"])
	if excluded.ID != faultyStatus.Peer {
		t.Errorf("excluded %s (%s), but the faulty node is %s", excluded.ID, excluded.Reason, faultyStatus.Peer)
	}
	t.Logf("faulty node excluded: %s", excluded.Reason)
	t.Logf("reached held-out loss %.4f ≤ %.4f (floor %.4f) at step %d", lastLoss(s), target, floor, s.Step)
	// The observer writes a sample of text from each head it measures.
	sample := ""
	for _, p := range s.Loss {
		if p.Eval > 0 && p.Sample != "" {
			sample = p.Sample
		}
	}
	// A head's sample is min(160, ctx-1) bytes; this round's model has a
	// context of 64.
	if len(sample) < 48 {
		t.Errorf("the dashboard shows no sample of the model's text (last %q)", sample)
	}
	t.Logf("the model writes: %q", sample)

	// 4. The dashboard in a real browser.
	if browser, err := dashboard.FindBrowser(); err == nil {
		bctx, bcancel := context.WithTimeout(ctx, 2*time.Minute)
		dom, err := dashboard.DumpDOM(bctx, browser, dash)
		if err != nil {
			t.Errorf("browser: %v", err)
		} else {
			points := strings.Count(dom, `class="pt"`)
			rows := strings.Count(dom, `class="peer`)
			if points == 0 || rows < 6 || !strings.Contains(dom, parsed.Name) {
				t.Errorf("the dashboard in %s shows %d loss points and %d peer rows", browser, points, rows)
			}
			t.Logf("dashboard in a headless browser: %d loss points, %d peer rows", points, rows)
		}
		art := os.Getenv("SHOAL_ARTIFACTS")
		if art == "" {
			art = dir
		}
		shot := filepath.Join(art, "dashboard-e2e.png")
		if err := dashboard.Screenshot(bctx, browser, dash, shot, 1280, 1000); err != nil {
			t.Errorf("screenshot: %v", err)
		} else {
			t.Logf("dashboard screenshot: %s", shot)
		}
		bcancel()
	} else if os.Getenv("SHOAL_REQUIRE_BROWSER") == "1" {
		t.Errorf("no browser for the dashboard check: %v (scripts/browser.sh installs one)", err)
	} else {
		t.Logf("no browser (%v): dashboard not checked in a browser", err)
	}

	// 5. Every honest node ends on the tracker's checkpoint.
	final := waitStep(s.Step+1, "final step")
	for name, p := range nodes {
		if name == "faulty" {
			continue
		}
		err := daemon.WaitFor(ctx, 200*time.Millisecond, func() bool {
			st, err := getNodeStatus(status[name])
			return err == nil && st.Step >= final.Step
		})
		if err != nil {
			t.Errorf("%s did not reach step %d", name, final.Step)
			continue
		}
		_ = p
	}
	e.stopAll()
	db, err := boltstore.OpenBolt(filepath.Join(tdir, "tracker.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := db.Load()
	if err != nil {
		t.Fatal(err)
	}
	for name := range nodes {
		if name == "faulty" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name, "head.json"))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var h struct {
			Step       uint64 `json:"step"`
			Checkpoint string `json:"checkpoint"`
		}
		if err := json.Unmarshal(b, &h); err != nil {
			t.Errorf("%s: head.json: %v", name, err)
			continue
		}
		switch {
		case h.Step == 0 || h.Step > uint64(len(st.Finals)):
			t.Errorf("%s stopped at C_%d; the tracker finalised %d steps", name, h.Step, len(st.Finals))
		case st.Finals[h.Step-1].Checkpoint.String() != h.Checkpoint:
			t.Errorf("%s holds C_%d = %s, the tracker finalised %s", name, h.Step, h.Checkpoint, st.Finals[h.Step-1].Checkpoint)
		default:
			t.Logf("%s holds C_%d = %s, as finalised", name, h.Step, h.Checkpoint)
		}
	}
}

func lastLoss(s dashboard.Snapshot) float64 {
	for i := len(s.Loss) - 1; i >= 0; i-- {
		if s.Loss[i].Eval > 0 {
			return s.Loss[i].Eval
		}
	}
	return 0
}

func tailLines(ls []string, n int) string {
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// roundSpec writes the template `round init --data-dir tdir` prints, with
// each replacement made (each must be in the template) and extra
// appended, to round.yaml in the test's directory, and returns its path
// and text.
func (e *e2e) roundSpec(tdir string, replace [][2]string, extra string) (path, spec string) {
	e.t.Helper()
	tmpl, err := exec.Command(e.bin, "round", "init", "--data-dir", tdir).Output()
	if err != nil {
		e.t.Fatalf("round init: %v", err)
	}
	spec = string(tmpl)
	for _, r := range replace {
		if !strings.Contains(spec, r[0]) {
			e.t.Fatalf("the template has no %q", r[0])
		}
		spec = strings.Replace(spec, r[0], r[1], 1)
	}
	spec += extra
	path = filepath.Join(e.dir, "round.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path, spec
}

// importInto imports a safetensors file into a checkpoint store and
// returns its CID.
func (e *e2e) importInto(file, store string) string {
	e.t.Helper()
	out, err := exec.Command(e.bin, "checkpoint", "import", file, "--store", store).Output()
	if err != nil {
		e.t.Fatalf("import %s: %v", file, err)
	}
	return strings.TrimSpace(string(out))
}

// startTracker starts the round of specPath on 127.0.0.1 with its
// dashboard, and returns the tracker, the dashboard's URL and the invite.
func (e *e2e) startTracker(tdir, specPath string, args ...string) (tr *proc, dash, invite string) {
	e.t.Helper()
	all := append([]string{"round", "start", "--loopback", "--data-dir", tdir, "--dashboard-addr", "127.0.0.1:0",
		"--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(e.t))}, args...)
	tr = e.start("tracker", e.bin, nil, append(all, specPath)...)
	dash = tr.find(e.t, reDashboard, 60*time.Second)
	for end := time.Now().Add(10 * time.Second); invite == "" && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		invite = strings.TrimSpace(tr.out.String())
	}
	if !strings.HasPrefix(invite, "shoal:") {
		e.t.Fatalf("no invite on the tracker's stdout: %q", invite)
	}
	return tr, dash, invite
}

// join starts a node daemon of one core that joins the invite's round,
// its data in the test's directory under name, and returns it and its
// status URL.
func (e *e2e) join(name, bin, invite string, env ...string) (*proc, string) {
	e.t.Helper()
	p := e.start(name, bin, env, "node", "join", "--loopback", "--cpus", "1", "--data-dir", filepath.Join(e.dir, name),
		"--status-addr", "127.0.0.1:0", invite)
	return p, p.find(e.t, reStatus, time.Minute)
}

// tails returns the last n lines of every process's stderr, for a
// failure's message.
func (e *e2e) tails(n int) string {
	var b strings.Builder
	for _, p := range e.procs {
		fmt.Fprintf(&b, "%s stderr tail:\n%s\n", p.name, tailLines(p.lines(), n))
	}
	return b.String()
}
