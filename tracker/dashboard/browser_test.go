package dashboard

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests load the dashboard in a real headless Chromium and read the
// DOM its script built. Without a browser they skip, unless
// SHOAL_REQUIRE_BROWSER=1. Screenshots go to $SHOAL_ARTIFACTS, or to a
// temporary directory.

func needBrowser(t *testing.T) string {
	t.Helper()
	b, err := FindBrowser()
	if err != nil {
		msg := err.Error()
		if !strings.Contains(msg, "scripts/browser.sh") {
			msg += "; scripts/browser.sh installs Chromium"
		}
		if os.Getenv("SHOAL_REQUIRE_BROWSER") == "1" {
			t.Fatalf("SHOAL_REQUIRE_BROWSER=1: %s", msg)
		}
		t.Skipf("%s (SHOAL_REQUIRE_BROWSER=1 makes this a failure)", msg)
	}
	return b
}

func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SHOAL_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		t.Fatal(err)
	}
	return abs
}

// browserCtx bounds a test's browser runs; the machine may be slow.
func browserCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*BrowserTimeout)
	t.Cleanup(cancel)
	return ctx
}

// dump loads the dashboard served by h and returns the DOM its script
// built.
func dump(t *testing.T, browser string, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	start := time.Now()
	dom, err := DumpDOM(browserCtx(t), browser, srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("DOM dumped in %v: %d bytes", time.Since(start).Round(time.Millisecond), len(dom))
	return dom
}

var (
	trainPoint = regexp.MustCompile(`<circle [^>]*class="pt"`)
	evalPoint  = regexp.MustCompile(`<circle [^>]*class="pt eval"`)
	peerRow    = regexp.MustCompile(`<tr class="peer">`)
	stepRow    = regexp.MustCompile(`<tr class="step">`)
	eventItem  = regexp.MustCompile(`<li class="event"`)
	waitHidden = regexp.MustCompile(`<div id="waiting" class="waiting" hidden=""`)
	floorLine  = regexp.MustCompile(`<line class="floor" `)
	tickLabels = regexp.MustCompile(`<text class="tick" `)
	pwned      = regexp.MustCompile(`<body[^>]*data-pwned`)
)

func count(re *regexp.Regexp, s string) int { return len(re.FindAllStringIndex(s, -1)) }

// counting counts the requests a handler serves, by path.
type counting struct {
	h  http.Handler
	mu sync.Mutex
	n  map[string]int
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.n[r.Method+" "+r.URL.Path]++
	c.mu.Unlock()
	c.h.ServeHTTP(w, r)
}

func (c *counting) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

func TestBrowserDashboard(t *testing.T) {
	browser := needBrowser(t)
	s := fakeSnapshot()
	h := &counting{h: New(fixed(s), Options{Title: "shoal tracker"}), n: map[string]int{}}
	dom := dump(t, browser, h)

	got := map[string]int{
		"train points": count(trainPoint, dom),
		"eval points":  count(evalPoint, dom),
		"peer rows":    count(peerRow, dom),
		"step rows":    count(stepRow, dom),
		"events":       count(eventItem, dom),
		"floor lines":  count(floorLine, dom),
		"tick labels":  count(tickLabels, dom),
	}
	t.Logf("counts in the DOM: %v", got)
	t.Logf("requests served: %v", h.n)
	// In a headless browser the page takes its first snapshot from the
	// stream, then polls: a stream never lets the network go quiet.
	if h.get("GET /api/events") < 1 || h.get("GET /static/app.js") != 1 {
		t.Errorf("requests %v: want the page to have opened the event stream", h.n)
	}
	want := map[string]int{
		"train points": 5, "eval points": 2, "peer rows": 3, "step rows": 6, "events": 6, "floor lines": 1,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d, want %d", k, got[k], n)
		}
	}
	if got["tick labels"] < 4 {
		t.Errorf("%d tick labels on the axes, want at least 4", got["tick labels"])
	}
	for _, want := range []string{
		`<h1 id="name">` + s.Name + `</h1>`,
		`polling every 2 s (headless browser)`,
		`title="` + s.Head + `"`,
		`41.7 samples/s`, `1.25 MB/s`, `3.40 MB/s`, `1 min 3 s`, // throughput
		`replica of unit 7 at step 3 disagreed`,
		`class="state state-excluded"`,
		`running 30 s`, // the open step
		// The newest sample, as text: its markup is escaped, not run.
		`What the model writes after step 4`, `sample 4: &lt;b&gt;bam&lt;/b&gt; mnmmka`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q", want)
		}
	}
	if !waitHidden.MatchString(dom) {
		t.Error(`the "waiting for the first step" notice shows although there are loss points`)
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}

	srv := httptest.NewServer(h)
	defer srv.Close()
	dir := artifacts(t)
	for _, shot := range []struct {
		name string
		w, h int
	}{
		{"dashboard.png", 1280, 900},
		{"dashboard-phone.png", 390, 844},
	} {
		path := filepath.Join(dir, shot.name)
		start := time.Now()
		if err := Screenshot(browserCtx(t), browser, srv.URL+"/", path, shot.w, shot.h); err != nil {
			t.Fatal(err)
		}
		png, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(png) == 0 || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("%s is not a PNG (%d bytes)", path, len(png))
		}
		t.Logf("screenshot %dx%d in %v: %s (%d bytes)", shot.w, shot.h, time.Since(start).Round(time.Millisecond), path, len(png))
	}
}

// TestBrowserWaiting: before the first step is finalised the page says so
// instead of drawing an empty chart.
func TestBrowserWaiting(t *testing.T) {
	browser := needBrowser(t)
	s := fakeSnapshot()
	s.Loss, s.Steps, s.Events = nil, nil, nil
	s.Step, s.Phase = 0, "open"
	dom := dump(t, browser, New(fixed(s), Options{}))

	if n := count(trainPoint, dom); n != 0 {
		t.Errorf("%d points drawn, want none", n)
	}
	if waitHidden.MatchString(dom) || !strings.Contains(dom, "Waiting for the first step") {
		t.Error(`the "waiting for the first step" notice does not show`)
	}
	if !strings.Contains(dom, "Step 0 is open, with 1 peer live.") {
		t.Error("the notice does not say which step is open and how many peers are live")
	}
	if n := count(peerRow, dom); n != 3 {
		t.Errorf("%d peer rows, want 3", n)
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}

	srv := httptest.NewServer(New(fixed(s), Options{}))
	defer srv.Close()
	path := filepath.Join(artifacts(t), "dashboard-waiting.png")
	if err := Screenshot(browserCtx(t), browser, srv.URL+"/", path, 1280, 900); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// TestBrowserHostile: markup in snapshot strings shows as text and never
// runs.
func TestBrowserHostile(t *testing.T) {
	browser := needBrowser(t)
	s := hostileSnapshot()
	dom := dump(t, browser, New(fixed(s), Options{}))

	if n := count(peerRow, dom); n != len(s.Peers) {
		t.Fatalf("%d peer rows, want %d: the page did not render\n%s", n, len(s.Peers), dom)
	}
	if pwned.MatchString(dom) {
		t.Errorf("markup from the snapshot ran:\n%s", dom)
	}
	// Elements the hostile strings would have made, had they been parsed.
	for _, tag := range []string{"<img", "<b ", "<x ", "<svg onload", "<textarea"} {
		if i := strings.Index(dom, tag); i >= 0 && !insideAttribute(dom, i) {
			t.Errorf("the DOM has an element %s... from the snapshot: %q", tag, dom[max(0, i-80):min(len(dom), i+80)])
		}
	}
	for _, want := range []string{
		`<h1 id="name">&lt;img src=x onerror="document.body.setAttribute('data-pwned','img')"&gt; round</h1>`,
		`&lt;svg onload=`,
		`&lt;script&gt;document.body.setAttribute('data-pwned','script')&lt;/script&gt;`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks the escaped text %q", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
}

// insideAttribute reports whether dom[i] lies within a quoted attribute
// value: HTML serialisation leaves < unescaped there (a title="..." with
// a peer's ID in it), where it is inert.
func insideAttribute(dom string, i int) bool {
	open := strings.LastIndex(dom[:i], `="`)
	if open < 0 {
		return false
	}
	return !strings.Contains(dom[open+2:i], `"`)
}

// TestBrowserPolling: when the event stream fails, the page polls
// api/status instead.
func TestBrowserPolling(t *testing.T) {
	browser := needBrowser(t)
	h := New(fixed(fakeSnapshot()), Options{})
	broken := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/events" {
			http.Error(w, "no streams here", http.StatusBadGateway)
			return
		}
		h.ServeHTTP(w, r)
	})
	dom := dump(t, browser, broken)
	if !strings.Contains(dom, `data-state="poll">polling every 2 s (no event stream)<`) {
		t.Error("the page does not say it is polling")
	}
	if n := count(trainPoint, dom); n != 5 {
		t.Errorf("%d points drawn from polling, want 5", n)
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
}
