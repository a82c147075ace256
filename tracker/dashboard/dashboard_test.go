package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeSnapshot is a round five steps in: three peers (one excluded), five
// loss points of which two have an eval loss, and a floor.
func fakeSnapshot() Snapshot {
	s := Snapshot{
		Round:   "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
		Name:    "tiny-shakespeare gpt, first light",
		Model:   "gpt 2x128, ctx 64",
		Codec:   "topk:k=0.01",
		Rule:    "mean",
		Invite:  "shoal1:bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy@/ip4/192.0.2.7/tcp/4001/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo",
		Now:     t0.Add(5*time.Minute + 30*time.Second),
		Started: t0,
		Step:    5,
		Phase:   "open",
		Head:    "bafkreidfy6bgsn3t7ngfs4rkr3f4cqv4dhw6k3bymx5ud6nx3mr7tdznpu",
		Floor:   0.9,
		Throughput: Throughput{
			SamplesPerSec:  41.7,
			BytesInPerSec:  1.25e6,
			BytesOutPerSec: 3.4e6,
			StepSeconds:    62.5,
		},
	}
	for i, l := range []float64{5.55, 3.1, 2.4, 2.05, 1.83} {
		p := LossPoint{Step: uint64(i), Train: l}
		if i == 2 || i == 4 {
			p.Eval = l + 0.07
			p.Sample = fmt.Sprintf("sample %d: <b>bam</b> mnmmka", i)
		}
		s.Loss = append(s.Loss, p)
		opened := t0.Add(time.Duration(i) * time.Minute)
		s.Steps = append(s.Steps, StepInfo{
			Step: uint64(i), Opened: opened,
			Closed: opened.Add(55 * time.Second), Finalised: opened.Add(58 * time.Second),
			Members: 3, Included: 2, Samples: 2560, Bytes: 3 << 20, Disputes: i % 3 / 2,
			Checkpoint: "bafkreicheckpoint" + strings.Repeat("x", 30) + string(rune('a'+i)),
		})
		s.Events = append(s.Events, Event{At: opened.Add(58 * time.Second), Kind: "final", Step: uint64(i), Detail: "finalised on 3 of 3 commits"})
	}
	s.Steps = append(s.Steps, StepInfo{Step: 5, Opened: t0.Add(5 * time.Minute), Members: 2})
	s.Peers = []PeerInfo{
		{ID: "12D3KooWA1", Role: "worker", State: "live", HeadStep: 5, LastSeen: s.Now.Add(-2 * time.Second), Units: 5, Samples: 6400, Verified: 1280, Checks: 1},
		{ID: "12D3KooWB2", Role: "worker", State: "excluded", HeadStep: 3, LastSeen: s.Now.Add(-90 * time.Second), Units: 2, Samples: 2560, Mismatches: 1, Reason: "replica of unit 7 at step 3 disagreed"},
		{ID: "12D3KooWC3", Role: "observer", State: "gone", HeadStep: 4, LastSeen: s.Now.Add(-40 * time.Second)},
	}
	s.Events = append(s.Events, Event{At: t0.Add(3 * time.Minute), Kind: "exclude", Step: 3, Peer: "12D3KooWB2", Detail: "lied about unit 7"})
	return s
}

func fixed(s Snapshot) func() Snapshot { return func() Snapshot { return s } }

func get(t *testing.T, h http.Handler, method, target string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRoutes(t *testing.T) {
	h := New(fixed(fakeSnapshot()), Options{Title: "Test tracker"})
	for _, tc := range []struct {
		method, path string
		code         int
		ctype        string // prefix of Content-Type
		contains     string
	}{
		{"GET", "/", 200, "text/html", `<table id="peers">`},
		{"GET", "/", 200, "text/html", `<title>Test tracker</title>`},
		{"GET", "/", 200, "text/html", `src="static/app.js"`},
		{"HEAD", "/", 200, "text/html", ""},
		{"GET", "/api/status", 200, "application/json", `"round":"bafkreigh2`},
		{"HEAD", "/api/status", 200, "application/json", ""},
		{"HEAD", "/api/events", 200, "text/event-stream", ""},
		{"GET", "/static/app.js", 200, "text/javascript", `new EventSource("api/events")`},
		{"GET", "/static/style.css", 200, "text/css", `font:`},
		{"GET", "/static/index.html", 404, "text/plain", ""},
		{"GET", "/static/", 404, "text/plain", ""},
		{"GET", "/static", 404, "text/plain", ""},
		{"GET", "/static/../dashboard.go", 404, "text/plain", ""},
		{"GET", "/index.html", 404, "text/plain", ""},
		{"GET", "/api", 404, "text/plain", ""},
		{"GET", "/api/status/", 404, "text/plain", ""},
		{"GET", "/favicon.ico", 404, "text/plain", ""},
		{"POST", "/nope", 404, "text/plain", ""},
		{"POST", "/", 405, "text/plain", ""},
		{"PUT", "/api/status", 405, "text/plain", ""},
		{"POST", "/api/events", 405, "text/plain", ""},
		{"DELETE", "/static/app.js", 405, "text/plain", ""},
		{"OPTIONS", "/", 405, "text/plain", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			res := get(t, h, tc.method, tc.path)
			b := body(t, res)
			if res.StatusCode != tc.code {
				t.Fatalf("status %d, want %d; body %q", res.StatusCode, tc.code, b)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("Content-Type %q, want %s...", ct, tc.ctype)
			}
			if !strings.Contains(b, tc.contains) {
				t.Errorf("body does not contain %q:\n%.500s", tc.contains, b)
			}
			if tc.method == "HEAD" && b != "" {
				t.Errorf("HEAD has a body: %.200q", b)
			}
			if tc.code == 405 && res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q, want GET, HEAD", res.Header.Get("Allow"))
			}
		})
	}
}

func TestPageHeaders(t *testing.T) {
	h := New(fixed(fakeSnapshot()), Options{})
	res := get(t, h, "GET", "/")
	page := body(t, res)
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "default-src 'none'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("Content-Security-Policy %q allows inline script or eval", csp)
	}
	if !strings.Contains(page, "<title>"+defaultTitle+"</title>") {
		t.Errorf("page does not carry the default title %q", defaultTitle)
	}
	// Nothing from elsewhere: every src and href is relative or data:.
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if u := m[1]; strings.Contains(u, "//") || strings.HasPrefix(u, "/") {
			t.Errorf("page loads %q: want relative URLs only", u)
		}
	}
	// No inline script: the CSP would block it anyway.
	if n := strings.Count(page, "<script"); n != 1 || !strings.Contains(page, `<script src="static/app.js" defer></script>`) {
		t.Errorf("page has %d script elements; want only static/app.js", n)
	}
}

func TestStaticRevalidates(t *testing.T) {
	h := New(fixed(Snapshot{}), Options{})
	for _, p := range []string{"/static/app.js", "/static/style.css", "/"} {
		res := get(t, h, "GET", p)
		etag := res.Header.Get("ETag")
		if etag == "" || res.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("%s: ETag %q, Cache-Control %q", p, etag, res.Header.Get("Cache-Control"))
		}
		if res := get(t, h, "GET", p, "If-None-Match", etag); res.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: status %d, want 304", p, res.StatusCode)
		}
	}
}

func TestStatusJSON(t *testing.T) {
	want := fakeSnapshot()
	res := get(t, New(fixed(want), Options{}), "GET", "/api/status")
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	raw := body(t, res)

	var got Snapshot
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", got, want)
	}

	// The names the page reads.
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	keys := func(v any) []string {
		obj, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v is not an object", v)
		}
		var ks []string
		for k := range obj {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	first := func(k string) any {
		l, ok := m[k].([]any)
		if !ok || len(l) == 0 {
			t.Fatalf("%s is %v, want a non-empty list", k, m[k])
		}
		return l[0]
	}
	for _, tc := range []struct {
		what string
		v    any
		want []string
	}{
		{"snapshot", m, []string{"codec", "events", "floor", "head", "invite", "loss", "model", "name", "now", "peers", "phase", "round", "rule", "started", "step", "steps", "throughput"}},
		{"loss point", first("loss"), []string{"step", "train"}},
		{"step", first("steps"), []string{"bytes", "checkpoint", "closed", "disputes", "finalised", "included", "members", "opened", "samples", "step"}},
		{"peer", first("peers"), []string{"checks", "head_step", "id", "last_seen", "mismatches", "role", "samples", "state", "units", "verified"}},
		{"throughput", m["throughput"], []string{"bytes_in_per_sec", "bytes_out_per_sec", "samples_per_sec", "step_seconds"}},
		{"event", first("events"), []string{"at", "detail", "kind", "step"}},
	} {
		if got := keys(tc.v); !slices.Equal(got, tc.want) {
			t.Errorf("%s has keys %v, want %v", tc.what, got, tc.want)
		}
	}
	if l := m["loss"].([]any); !slices.Contains(keys(l[2]), "eval") {
		t.Errorf("loss point 2 lacks eval: %v", l[2])
	}
}

// TestStatusEmpty: a round that has not started sends lists, not nulls, so
// the page never has to tell them apart.
func TestStatusEmpty(t *testing.T) {
	raw := body(t, get(t, New(fixed(Snapshot{Phase: "idle"}), Options{}), "GET", "/api/status"))
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"loss", "steps", "peers", "events"} {
		if string(m[k]) != "[]" {
			t.Errorf("%s = %s, want []", k, m[k])
		}
	}
}

func TestStatusNonFinite(t *testing.T) {
	s := fakeSnapshot()
	s.Loss[3].Train = math.NaN()
	s.Loss[4].Eval = math.Inf(1)
	s.Floor = math.NaN()
	s.Throughput.SamplesPerSec = math.Inf(-1)
	before := len(s.Events)

	res := get(t, New(fixed(s), Options{}), "GET", "/api/status")
	raw := body(t, res)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, raw)
	}
	var got Snapshot
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Loss) != 4 || got.Loss[3].Step != 4 || got.Loss[3].Eval != 0 {
		t.Errorf("loss = %+v, want steps 0-2 and 4, without step 4's eval", got.Loss)
	}
	if got.Floor != 0 || got.Throughput.SamplesPerSec != 0 {
		t.Errorf("floor %v, samples/s %v: want 0 for non-finite numbers", got.Floor, got.Throughput.SamplesPerSec)
	}
	if len(got.Events) != before+1 || got.Events[before].Kind != "dashboard" || got.Events[before].Step != 3 {
		t.Errorf("events = %+v, want one more of kind dashboard for step 3", got.Events)
	}
	// The source's snapshot is left as it was.
	if !math.IsNaN(s.Loss[3].Train) || len(s.Events) != before || len(s.Loss) != 5 {
		t.Error("marshal modified the snapshot")
	}
}

func TestStatusUnencodable(t *testing.T) {
	s := fakeSnapshot()
	s.Now = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // JSON times stop at 9999
	res := get(t, New(fixed(s), Options{}), "GET", "/api/status")
	if b := body(t, res); res.StatusCode != 500 || !strings.Contains(b, "encode snapshot") {
		t.Errorf("status %d, body %q; want 500 and the encoding error", res.StatusCode, b)
	}
}

// sseEvent is one event read from a stream.
type sseEvent struct {
	name, data string
}

// readEvent reads the next event from a text/event-stream.
func readEvent(r *bufio.Reader) (sseEvent, error) {
	var ev sseEvent
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if data == nil && ev.name == "" {
				continue
			}
			ev.data = strings.Join(data, "\n")
			return ev, nil
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "retry: "), strings.HasPrefix(line, ":"):
		default:
			return ev, io.ErrUnexpectedEOF
		}
	}
}

// tracked wraps a handler and counts the requests it is still serving.
type tracked struct {
	h      http.Handler
	active atomic.Int32
	done   chan struct{} // receives when a request returns
}

func track(h http.Handler) *tracked { return &tracked{h: h, done: make(chan struct{}, 16)} }

func (t *tracked) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t.active.Add(1)
	defer func() { t.active.Add(-1); t.done <- struct{}{} }()
	t.h.ServeHTTP(w, r)
}

func openStream(t *testing.T, ctx context.Context, url string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, Content-Type %q, Cache-Control %q", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"))
	}
	return res, bufio.NewReader(res.Body)
}

func TestEventsStream(t *testing.T) {
	var calls atomic.Uint64
	src := func() Snapshot {
		s := fakeSnapshot()
		s.Now = t0.Add(time.Duration(calls.Add(1)) * time.Second)
		return s
	}
	th := track(New(src, Options{Interval: 20 * time.Millisecond}))
	srv := httptest.NewServer(th)
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, r := openStream(t, ctx, srv.URL+"/api/events")
	defer res.Body.Close()

	var seen []time.Time
	for len(seen) < 3 {
		ev, err := readEvent(r)
		if err != nil {
			t.Fatalf("after %d events: %v", len(seen), err)
		}
		if ev.name != "" {
			t.Fatalf("event %q: %s", ev.name, ev.data)
		}
		var s Snapshot
		if err := json.Unmarshal([]byte(ev.data), &s); err != nil {
			t.Fatalf("event %d: %v in %q", len(seen), err, ev.data)
		}
		if s.Round != fakeSnapshot().Round || len(s.Peers) != 3 || len(s.Loss) != 5 {
			t.Fatalf("event %d: unexpected snapshot %+v", len(seen), s)
		}
		seen = append(seen, s.Now)
	}
	if !(seen[0].Before(seen[1]) && seen[1].Before(seen[2])) {
		t.Errorf("snapshots taken at %v: want fresh ones", seen)
	}

	cancel()
	waitReturned(t, th)
}

// waitReturned waits until the handler has returned from every request.
func waitReturned(t *testing.T, th *tracked) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for th.active.Load() > 0 {
		select {
		case <-th.done:
		case <-deadline:
			t.Fatalf("%d requests still being served 10 s after their clients went away", th.active.Load())
		}
	}
}

func TestEventsStepChange(t *testing.T) {
	var step atomic.Uint64
	src := func() Snapshot {
		s := fakeSnapshot()
		s.Step = step.Load()
		return s
	}
	th := track(New(src, Options{Interval: time.Hour, Check: 5 * time.Millisecond}))
	srv := httptest.NewServer(th)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, r := openStream(t, ctx, srv.URL+"/api/events")
	defer res.Body.Close()

	next := func() Snapshot {
		t.Helper()
		got := make(chan Snapshot, 1)
		fail := make(chan error, 1)
		go func() {
			ev, err := readEvent(r)
			if err != nil {
				fail <- err
				return
			}
			var s Snapshot
			if err := json.Unmarshal([]byte(ev.data), &s); err != nil {
				fail <- err
				return
			}
			got <- s
		}()
		select {
		case s := <-got:
			return s
		case err := <-fail:
			t.Fatal(err)
		case <-time.After(10 * time.Second):
			t.Fatal("no event 10 s after the step changed (the interval is an hour)")
		}
		return Snapshot{}
	}
	if s := next(); s.Step != 0 {
		t.Fatalf("first event at step %d, want 0", s.Step)
	}
	step.Store(8)
	if s := next(); s.Step != 8 {
		t.Fatalf("second event at step %d, want 8", s.Step)
	}
	cancel()
	res.Body.Close()
	waitReturned(t, th)
}

// flushWriter is a ResponseWriter whose flushed writes can be read while
// the handler runs.
type flushWriter struct {
	mu      sync.Mutex
	hdr     http.Header
	buf     strings.Builder
	flushes chan string
}

func (w *flushWriter) Header() http.Header { return w.hdr }
func (w *flushWriter) WriteHeader(int)     {}
func (w *flushWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}
func (w *flushWriter) Flush() {
	w.mu.Lock()
	s := w.buf.String()
	w.buf.Reset()
	w.mu.Unlock()
	w.flushes <- s
}

// TestEventsContextEnds: the stream stops when its request's context ends
// (the server shutting down, say), not only when the client leaves.
func TestEventsContextEnds(t *testing.T) {
	h := New(fixed(fakeSnapshot()), Options{Interval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	w := &flushWriter{hdr: http.Header{}, flushes: make(chan string, 100)}
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		h.ServeHTTP(w, httptest.NewRequest("GET", "/api/events", nil).WithContext(ctx))
	}()
	for i := range 2 {
		select {
		case ev := <-w.flushes:
			if !strings.Contains(ev, "data: {") || !strings.HasSuffix(ev, "}\n\n") {
				t.Fatalf("event %d = %q", i, ev)
			}
			if i == 0 && !strings.HasPrefix(ev, "retry: ") {
				t.Errorf("first event %q does not set the retry delay", ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event %d", i)
		}
	}
	cancel()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not return after its context ended")
	}
}

func TestEventsFault(t *testing.T) {
	s := fakeSnapshot()
	s.Now = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	h := New(fixed(s), Options{Interval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &flushWriter{hdr: http.Header{}, flushes: make(chan string, 100)}
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		h.ServeHTTP(w, httptest.NewRequest("GET", "/api/events", nil).WithContext(ctx))
	}()
	for i := range 2 {
		select {
		case ev := <-w.flushes:
			if !strings.Contains(ev, "event: fault\ndata: dashboard: encode snapshot") {
				t.Errorf("event %d = %q, want a fault", i, ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event %d", i)
		}
	}
	cancel()
	<-returned
}

func TestOptionsDefaults(t *testing.T) {
	h := New(fixed(Snapshot{}), Options{}).(*handler)
	if h.interval != time.Second || h.check != 250*time.Millisecond {
		t.Errorf("interval %v, check %v; want 1s and 250ms", h.interval, h.check)
	}
	h = New(fixed(Snapshot{}), Options{Interval: time.Second, Check: 2 * time.Second}).(*handler)
	if h.check != 0 {
		t.Errorf("check %v with a longer Check than Interval; want none", h.check)
	}
	defer func() {
		if recover() == nil {
			t.Error("New(nil) did not panic")
		}
	}()
	New(nil, Options{})
}

// TestHostileTitle: the title is the one string the server puts into the
// page; it is escaped.
func TestHostileTitle(t *testing.T) {
	const evil = `</title><script>alert("pwned")</script><b x='1'>&`
	page := body(t, get(t, New(fixed(Snapshot{}), Options{Title: evil}), "GET", "/"))
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "<b x=") {
		t.Errorf("title not escaped:\n%s", page)
	}
	if want := `&lt;/title&gt;&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;&lt;b x=&#39;1&#39;&gt;&amp;`; strings.Count(page, want) != 2 {
		t.Errorf("page does not show the escaped title twice (%s)", want)
	}
}

// TestHostileSnapshotServerSide: snapshot strings never reach the
// server-rendered page; /api/status carries them as JSON strings.
func TestHostileSnapshotServerSide(t *testing.T) {
	s := hostileSnapshot()
	h := New(fixed(s), Options{})
	page := body(t, get(t, h, "GET", "/"))
	if strings.Contains(page, "pwned") {
		t.Errorf("the page holds snapshot data:\n%s", page)
	}
	raw := body(t, get(t, h, "GET", "/api/status"))
	if strings.ContainsAny(raw, "<>") {
		t.Errorf("status JSON carries raw < or >: %s", raw)
	}
	var got Snapshot
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != s.Name || got.Peers[0].ID != s.Peers[0].ID {
		t.Errorf("hostile strings did not survive the round trip: %q, %q", got.Name, got.Peers[0].ID)
	}
}

// hostileSnapshot has markup in every string a peer or a spec can choose.
// If any of it ran, it would mark the body with data-pwned.
func hostileSnapshot() Snapshot {
	const (
		img    = `<img src=x onerror="document.body.setAttribute('data-pwned','img')">`
		script = `<script>document.body.setAttribute('data-pwned','script')</script>`
		svgTag = `<svg onload="document.body.setAttribute('data-pwned','svg')"></svg>`
		quote  = `"><b class=pwned>bold</b><x y="`
	)
	s := fakeSnapshot()
	s.Name = img + " round"
	s.Round = script
	s.Model = svgTag
	s.Codec = quote
	s.Rule = img
	s.Phase = script
	s.Head = quote + script
	s.Invite = `"></textarea>` + script
	s.Peers = []PeerInfo{
		{ID: script, Role: img, State: quote, Reason: svgTag + script},
		{ID: quote + "12D3KooW", Role: "worker", State: "excluded", Reason: img},
	}
	s.Steps[0].Checkpoint = script
	s.Events = []Event{
		{At: t0, Kind: script, Step: 1, Peer: img, Detail: svgTag},
		{At: t0, Kind: "exclude", Step: 2, Peer: script, Detail: quote + img},
	}
	return s
}

// TestAppJSBuildsWithText: app.js inserts data with textContent,
// createElement and fixed attribute names, and has no HTML sink at all.
func TestAppJSBuildsWithText(t *testing.T) {
	b, err := assets.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	js := string(b)
	for _, sink := range []string{
		"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "DOMParser",
		"createContextualFragment", "srcdoc", "eval(", "Function(", "javascript:",
		"setTimeout(\"", "setTimeout('", ".href =", ".src =",
	} {
		if strings.Contains(js, sink) {
			t.Errorf("app.js uses %s", sink)
		}
	}
	for _, need := range []string{"textContent", "createElement(", "createElementNS(", `new EventSource("api/events")`, `fetch("api/status"`} {
		if !strings.Contains(js, need) {
			t.Errorf("app.js does not use %s", need)
		}
	}
	// setAttribute only with names fixed in the script: a literal, or the
	// key of an attribute object in svg(), whose keys are literals too.
	allowed := []string{`"title"`, `"data-state"`, `"data-phase"`, `"data-kind"`, "k"}
	for _, m := range regexp.MustCompile(`setAttribute\(\s*([^,]+),`).FindAllStringSubmatch(js, -1) {
		if !slices.Contains(allowed, strings.TrimSpace(m[1])) {
			t.Errorf("app.js calls setAttribute(%s, ...)", m[1])
		}
	}
}

// TestDeps: the dashboard needs nothing outside the standard library, so
// any part of shoal can serve it.
func TestDeps(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const self = "github.com/shoal-network/shoal/tracker/dashboard"
	if got := strings.Fields(string(out)); !slices.Equal(got, []string{self}) {
		t.Errorf("non-standard dependencies %v, want only %s", got, self)
	}
}
