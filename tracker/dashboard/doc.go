// Package dashboard is the web page a round's tracker serves to the
// researcher who started it: the loss curve, the peers with their line of
// the contribution ledger, the round's throughput, the step timeline and
// recent events.
//
// New returns an http.Handler over a function that builds a Snapshot on
// request. It serves
//
//	GET /             the page
//	GET /api/status   the current Snapshot as JSON
//	GET /api/events   server-sent events: the Snapshot as JSON in one data:
//	                  line, every Options.Interval and as soon as the step changes
//	GET /static/...   the page's script and style sheet
//
// HEAD is accepted wherever GET is; other methods get 405 and other paths
// 404. The assets are embedded in the binary; the page loads nothing from
// elsewhere and needs no build step. URLs inside the page are relative, so
// the handler can be mounted under a prefix with http.StripPrefix (mount it
// at "/prefix/", with the trailing slash).
//
// The snapshot is untrusted input as far as the page is concerned: peers
// choose their own IDs, and reasons and event details quote them. The page
// builds its DOM with createElement and textContent only and never parses
// snapshot data as HTML, and it sets a Content-Security-Policy that allows
// no inline script.
//
// In a headless browser (or one under automation) the page reads one
// snapshot from the event stream, closes it and polls /api/status: such
// browsers render once no request is pending, which a stream never allows
// (see VirtualTimeBudget).
//
// JSON cannot carry NaN or infinities. A loss point whose training loss is
// not finite is left out of /api/status and /api/events, and an event of
// kind "dashboard" says so; other non-finite numbers are sent as 0.
//
// FindBrowser, DumpDOM and Screenshot drive a headless Chromium for tests
// that want to see a page as a browser renders it; scripts/browser.sh
// installs one.
package dashboard
