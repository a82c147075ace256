package daemon

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// StatusHandler serves a node's status: a small page at /, the Status as
// JSON at /api/status and Prometheus metrics at /metrics.
func (d *Node) StatusHandler() http.Handler {
	reg := prometheus.NewRegistry()
	gauge := func(name, help string, f func(Status) float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "shoal", Subsystem: "node", Name: name, Help: help},
			func() float64 { return f(d.Status()) }))
	}
	counter := func(name, help string, f func(Status) float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "shoal", Subsystem: "node", Name: name, Help: help},
			func() float64 { return f(d.Status()) }))
	}
	gauge("step", "The outer step the node is at (it holds C_step).", func(s Status) float64 { return float64(s.Step) })
	counter("units_total", "Work units trained.", func(s Status) float64 { return float64(s.Units) })
	counter("samples_total", "Samples (sequences) trained on.", func(s Status) float64 { return float64(s.Samples) })
	gauge("train_loss", "Mean training loss of the last unit.", func(s Status) float64 { return s.TrainLoss })
	gauge("eval_loss", "Held-out loss of the last checkpoint evaluated (observers).", func(s Status) float64 { return s.EvalLoss })
	gauge("peers", "Peers on the round's gossip topic.", func(s Status) float64 { return float64(s.Peers) })
	counter("protocol_bytes_received_total", "Bytes of protocol messages received.", func(s Status) float64 { return float64(s.BytesIn) })
	counter("protocol_bytes_published_total", "Bytes of protocol messages published.", func(s Status) float64 { return float64(s.BytesOut) })
	counter("blob_bytes_served_total", "Bytes of content served to peers.", func(s Status) float64 { return float64(s.BlobOut) })
	counter("blob_bytes_fetched_total", "Bytes of content fetched from peers.", func(s Status) float64 { return float64(s.BlobIn) })
	counter("gossip_bytes_received_total", "Bytes read from gossip streams, relays and control included.", func(s Status) float64 { return float64(s.GossipIn) })
	counter("gossip_bytes_sent_total", "Bytes written to gossip streams, relays and control included.", func(s Status) float64 { return float64(s.GossipOut) })
	gauge("disk_bytes", "Bytes the checkpoints take on disk (with a disk cap).", func(s Status) float64 { return float64(s.Disk) })
	gauge("disk_full", "1 while work is paused for want of disk.", func(s Status) float64 {
		if s.DiskFull != "" {
			return 1
		}
		return 0
	})
	counter("messages_refused_total", "Messages the protocol refused.", func(s Status) float64 { return float64(s.Refused) })

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		_ = e.Encode(d.Status())
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, statusPage(d.Status()))
	})
	return mux
}

// statusPage renders a node's status as a small self-refreshing page.
func statusPage(s Status) string {
	var b strings.Builder
	e := html.EscapeString
	fmt.Fprintf(&b, `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>shoal node %s</title>
<style>body{font:15px system-ui,sans-serif;margin:2em;max-width:60em;color:#1b1f24}td,th{padding:.2em .8em;text-align:left}
th{color:#57606a;font-weight:normal}code{font-size:13px}</style></head><body>
<h1>shoal %s</h1><table>`, e(short(s.Peer)), e(s.Role))
	row := func(k, v string) { fmt.Fprintf(&b, "<tr><th>%s</th><td>%s</td></tr>", e(k), v) }
	row("peer", "<code>"+e(s.Peer)+"</code>")
	row("round", "<code>"+e(s.Round)+"</code>")
	row("step", fmt.Sprintf("%d (head <code>%s</code>)", s.Step, e(s.Head)))
	row("contribution", fmt.Sprintf("%d units, %d samples, %d verified by a replica", s.Units, s.Samples, s.Verified))
	if s.TrainLoss > 0 {
		row("last unit", fmt.Sprintf("%s, loss %.4f", e(s.LastUnit), s.TrainLoss))
	}
	if s.EvalLoss > 0 {
		row("held-out loss", fmt.Sprintf("%.4f at step %d", s.EvalLoss, s.EvalStep))
	}
	row("peers", fmt.Sprint(s.Peers))
	row("traffic", fmt.Sprintf("messages %s in, %s out; content %s in, %s out", Bytes(s.BytesIn), Bytes(s.BytesOut), Bytes(s.BlobIn), Bytes(s.BlobOut)))
	row("gossip on the wire", fmt.Sprintf("%s in, %s out (relays and control included)", Bytes(s.GossipIn), Bytes(s.GossipOut)))
	if s.Disk > 0 {
		row("disk", Bytes(s.Disk)+" of checkpoints")
	}
	if s.DiskFull != "" {
		row("disk full", "work paused, retrying with a backoff: "+e(s.DiskFull))
	}
	row("up since", e(s.Started.Format(time.RFC3339)))
	b.WriteString("</table><h2>Recent events</h2><table>")
	for i := len(s.Events) - 1; i >= 0; i-- {
		ev := s.Events[i]
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%d</td><td>%s</td></tr>", e(ev.At.Format("15:04:05")), e(ev.Kind), ev.Step, e(ev.Detail))
	}
	b.WriteString("</table></body></html>\n")
	return b.String()
}

func short(id string) string {
	if len(id) > 16 {
		return id[:8] + "…" + id[len(id)-6:]
	}
	return id
}

// Bytes formats a byte count for people: 1.5 MB, 320 kB, 12 B.
func Bytes(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "kB", "MB", "GB", "TB"} {
		if f < 1000 || u == "TB" {
			if u == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
		f /= 1000
	}
	return ""
}
