package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed static
var assets embed.FS

// Options configures the dashboard's handler. The zero value is ready to
// use.
type Options struct {
	// Title names the page in the browser's tab and above the round's
	// name; default "shoal tracker".
	Title string
	// Interval is how often /api/events pushes a snapshot; default 1 s.
	Interval time.Duration
	// Check is how often an event stream asks for a snapshot between
	// pushes to see whether the step moved on, so that a new step shows
	// at once; default Interval/4. A Check of Interval or more checks only
	// at the pushes.
	Check time.Duration
}

const (
	defaultTitle    = "shoal tracker"
	defaultInterval = time.Second
	// writeWait is how long one write to an event stream may take before
	// the connection is given up.
	writeWait = 30 * time.Second
	// retryMillis is how long a browser waits before reconnecting a
	// dropped event stream.
	retryMillis = 2000
)

// contentSecurityPolicy lets the page run its own script and style and
// talk to its own origin, and nothing else.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type handler struct {
	src      func() Snapshot
	interval time.Duration
	check    time.Duration // 0: no checks between pushes
	page     asset
	static   map[string]asset // by name under /static/
}

type asset struct {
	name  string
	body  []byte
	ctype string
	etag  string
}

// New returns the dashboard's handler. src builds the snapshot to show; it
// is called once per /api/status request and, for each open event stream,
// every Options.Check, so it should be cheap and safe for concurrent use.
// The handler holds no goroutines of its own: a stream runs in its
// request's goroutine and ends with its request's context.
func New(src func() Snapshot, opts Options) http.Handler {
	if src == nil {
		panic("dashboard: nil snapshot source")
	}
	if opts.Title == "" {
		opts.Title = defaultTitle
	}
	if opts.Interval <= 0 {
		opts.Interval = defaultInterval
	}
	if opts.Check <= 0 {
		opts.Check = opts.Interval / 4
	}
	h := &handler{src: src, interval: opts.Interval, check: opts.Check, static: map[string]asset{}}
	if h.check >= h.interval {
		h.check = 0
	}

	tmpl := template.Must(template.ParseFS(assets, "static/index.html"))
	var page bytes.Buffer
	if err := tmpl.Execute(&page, struct{ Title string }{opts.Title}); err != nil {
		panic("dashboard: render index.html: " + err.Error())
	}
	h.page = newAsset("index.html", page.Bytes())
	for _, name := range []string{"app.js", "style.css"} {
		body, err := assets.ReadFile("static/" + name)
		if err != nil {
			panic("dashboard: missing embedded asset " + name)
		}
		h.static[name] = newAsset(name, body)
	}
	return h
}

// contentTypes are the assets' types, fixed here rather than read from
// the system's MIME tables, which differ between machines.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

func newAsset(name string, body []byte) asset {
	sum := sha256.Sum256(body)
	ctype, ok := contentTypes[path.Ext(name)]
	if !ok {
		panic("dashboard: no content type for " + name)
	}
	return asset{name: name, body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var serve func(http.ResponseWriter, *http.Request)
	switch p := r.URL.Path; {
	case p == "/":
		serve = h.servePage
	case p == "/api/status":
		serve = h.serveStatus
	case p == "/api/events":
		serve = h.serveEvents
	case strings.HasPrefix(p, "/static/"):
		a, ok := h.static[strings.TrimPrefix(p, "/static/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		serve = func(w http.ResponseWriter, r *http.Request) { serveAsset(w, r, a) }
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	serve(w, r)
}

func (h *handler) servePage(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	hdr.Set("Referrer-Policy", "no-referrer")
	serveAsset(w, r, h.page)
}

// serveAsset serves a fixed body; the ETag lets a browser revalidate
// cheaply after the binary changes.
func serveAsset(w http.ResponseWriter, r *http.Request, a asset) {
	hdr := w.Header()
	hdr.Set("Content-Type", a.ctype)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", a.etag)
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}

func (h *handler) serveStatus(w http.ResponseWriter, r *http.Request) {
	b, err := h.src().marshal()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}

// serveEvents streams snapshots until the client goes away or the request's
// context ends. A snapshot that cannot be encoded is reported as a "fault"
// event carrying the error's text, and the stream goes on.
func (h *handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no") // keep reverse proxies from buffering the stream
	if r.Method == http.MethodHead {
		return
	}

	s := h.src()
	step := s.Step
	if err := h.push(w, rc, fmt.Sprintf("retry: %d\n", retryMillis), s); err != nil {
		return
	}

	push := time.NewTicker(h.interval)
	defer push.Stop()
	var checks <-chan time.Time
	if h.check > 0 {
		t := time.NewTicker(h.check)
		defer t.Stop()
		checks = t.C
	}
	ctx := r.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-push.C:
			s = h.src()
		case <-checks:
			if s = h.src(); s.Step == step {
				continue
			}
			push.Reset(h.interval)
		}
		step = s.Step
		if err := h.push(w, rc, "", s); err != nil {
			return
		}
	}
}

// push writes one event: prefix (a field line or nothing), then the
// snapshot.
func (h *handler) push(w io.Writer, rc *http.ResponseController, prefix string, s Snapshot) error {
	var ev bytes.Buffer
	ev.WriteString(prefix)
	if b, err := s.marshal(); err != nil {
		ev.WriteString("event: fault\n")
		writeData(&ev, err.Error())
	} else {
		ev.WriteString("data: ")
		ev.Write(b) // json.Marshal's output holds no newline
		ev.WriteString("\n")
	}
	ev.WriteString("\n")

	// Extend the write deadline for this event, so that a server's
	// WriteTimeout does not cut a long stream.
	if err := rc.SetWriteDeadline(time.Now().Add(writeWait)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := w.Write(ev.Bytes()); err != nil {
		return err
	}
	return rc.Flush()
}

// writeData writes text as data: lines, one for each of its lines.
func writeData(b *bytes.Buffer, text string) {
	for line := range strings.Lines(text) {
		b.WriteString("data: ")
		b.WriteString(strings.TrimRight(line, "\r\n"))
		b.WriteString("\n")
	}
}
