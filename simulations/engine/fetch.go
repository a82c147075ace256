package engine

import (
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker/round"
)

// holds reports whether a store holds content of a kind.
func holds(s *Store, kind node.FetchKind, id cid.Cid) bool {
	if kind == node.FetchBlob {
		return s.HasBlob(id)
	}
	return s.HasCheckpoint(id)
}

// fetch copies content the node lacks from the first provider (then any
// machine) that is up, reachable and holds it, verified on arrival; or
// reports failure.
func (c *Cluster) fetch(h *host, f node.Fetch) {
	var src *host
	try := func(p string) bool {
		s, ok := c.hosts[p]
		if !ok || p == h.id || !s.alive || !c.reachable(h.id, p) || !holds(s.store, f.Kind, f.CID) || (s.withholds && f.Kind == node.FetchBlob) {
			return false
		}
		src = s
		return true
	}
	found := false
	for _, p := range f.Providers {
		if found = try(p); found {
			break
		}
	}
	if !found {
		for _, p := range c.order {
			if found = try(p); found {
				break
			}
		}
	}
	id, ep := h.id, h.epoch
	if src == nil {
		c.schedule(c.now.Add(time.Second), id, ep, func() {
			c.drive(h.loop.Fetched(c.now, f.CID, false))
			c.wakeAt(h, c.now.Add(round.HeartbeatInterval(c.cfg.Spec)))
		})
		return
	}
	var size int64
	var put func() error
	switch f.Kind {
	case node.FetchBlob:
		b, _ := src.store.Blob(f.CID)
		size = int64(len(b))
		if c.cfg.ResidualBytes > 0 || c.cfg.UpdateBytes > 0 {
			size = c.blobBytes(f.CID, size)
		}
		put = func() error {
			if err := h.store.putPooled(f.CID); err == nil {
				return nil
			}
			got, err := h.store.PutBlob(b)
			if err == nil && !got.Equals(f.CID) {
				err = fmt.Errorf("blob %s arrived as %s", f.CID, got)
			}
			return err
		}
	case node.FetchCheckpoint:
		ch, _ := src.store.Chunked(f.CID)
		size = int64(len(ch.Data))
		if c.cfg.CheckpointBytes > 0 {
			size = c.cfg.CheckpointBytes
		}
		put = func() error { return h.store.PutChunked(f.CID, ch) }
	}
	var d time.Duration
	if c.cfg.Net == nil {
		bw := c.cfg.Bandwidth
		if bw <= 0 {
			bw = 100e6
		}
		d = c.latency(src.id, h.id) + time.Duration(float64(size)/bw*float64(time.Second))
	} else {
		rate := h.link.Down
		if rate <= 0 || (src.link.Up > 0 && src.link.Up < rate) {
			rate = src.link.Up
		}
		d = src.link.Latency + h.link.Latency + time.Duration(float64(size)*secondsPerByte(rate)*1e9)
		src.bytesOut += size
		h.bytesIn += size
	}
	c.schedule(c.now.Add(d), id, ep, func() {
		ok := c.reachable(h.id, src.id)
		if ok {
			if err := put(); err != nil {
				c.err = fmt.Errorf("simulations: %s: fetching %s: %w", id, f.CID, err)
				return
			}
		}
		c.drive(h.loop.Fetched(c.now, f.CID, ok))
		if !ok {
			c.wakeAt(h, c.now.Add(round.HeartbeatInterval(c.cfg.Spec)))
		}
	})
}

// blobBytes is the modelled size of a fetched blob: an update's payload
// (UpdateBytes) or, otherwise, a residual (ResidualBytes).
func (c *Cluster) blobBytes(id cid.Cid, actual int64) int64 {
	if _, ok := c.present[id]; ok && c.cfg.UpdateBytes > 0 {
		return c.cfg.UpdateBytes
	}
	if c.cfg.ResidualBytes > 0 {
		return c.cfg.ResidualBytes
	}
	return actual
}
