package engine

import (
	"fmt"
	"time"

	"github.com/shoal-network/shoal/tracker/wire"
)

// How messages cross the network: with latency alone, or through the
// machines' links (Network), fanned out to every machine or, under
// Batch, routed as batch.go says.

// port is a machine's end of the network: its link and its queues.
type port struct {
	link             Link
	class            string
	upFree, downFree float64 // virtual ns when the uplink and downlink queues empty
	bytesIn          int64
	bytesOut         int64
}

// SetLink gives a machine (a node or the tracker) its link and the name
// of its class, for reports. It applies with Net.
func (c *Cluster) SetLink(id string, l Link, class string) {
	p := c.port(id)
	if p == nil {
		return
	}
	p.link, p.class = l, class
	c.net.add(l)
}

// LinkOf returns a machine's link and class.
func (c *Cluster) LinkOf(id string) (Link, string) {
	if p := c.port(id); p != nil {
		return p.link, p.class
	}
	return Link{}, ""
}

func (c *Cluster) port(id string) *port {
	if t := c.trackerOf(id); t != nil {
		return &t.port
	}
	if h, ok := c.hosts[id]; ok {
		return &h.port
	}
	return nil
}

func (c *Cluster) latency(from, to string) time.Duration {
	if c.cfg.Latency != nil {
		return c.cfg.Latency(from, to, c.rng)
	}
	return 10*time.Millisecond + time.Duration(c.rng.Int64N(int64(20*time.Millisecond)))
}

// wireSize is the bytes the network carries for a message whose encoding
// is n bytes.
func (c *Cluster) wireSize(m wire.Msg, n int) float64 {
	if u, ok := m.(*wire.Update); ok && c.cfg.UpdateBytes > 0 {
		return float64(n - len(u.Data) + int(c.cfg.UpdateBytes))
	}
	return float64(n)
}

// publish sends a message to every other machine, through the wire
// encoding, with latency and loss.
func (c *Cluster) publish(from string, m wire.Msg) { c.publishFrom(from, nil, m) }

// publishFrom is publish from a machine whose port is src (nil: looked
// up by its ID, when the network needs it).
func (c *Cluster) publishFrom(from string, src *port, m wire.Msg) {
	b, err := wire.Marshal(m)
	if err != nil {
		c.err = fmt.Errorf("simulations: %s published a malformed %s: %w", from, m.Kind(), err)
		return
	}
	c.BytesPublished += int64(len(b))
	// Decode once: every receiver gets the same message, as a gossip
	// router would hand each one the same bytes. Receivers treat it as
	// read-only. Under Batch a peer's Hello, the most frequent message
	// of a large run, reaches the tracker alone, which keeps nothing of
	// it: it gets the Hello as sent, whose form Marshal has just checked
	// (wire's tests check that what Marshal writes decodes to the same
	// message; runs without Batch decode every message).
	dec := m
	fromTracker := c.trackerOf(from) != nil
	if _, hello := m.(*wire.Hello); !hello || !c.cfg.Batch || fromTracker {
		if dec, err = wire.Unmarshal(b); err != nil {
			c.err = fmt.Errorf("simulations: a %s message from %s does not decode: %w", m.Kind(), from, err)
			return
		}
	}
	if fromTracker {
		c.sybilsSaw(dec)
	}
	if c.cfg.Net == nil {
		c.fanOut(from, dec, func(to string) time.Time { return c.now.Add(c.latency(from, to)) })
		return
	}
	size := c.wireSize(dec, len(b))
	if _, ok := dec.(*wire.Update); ok {
		c.updatesPublished++
		c.updateBytes += size
	}
	if src == nil {
		src = c.port(from)
	}
	depart := c.upload(src, size)
	if c.cfg.Batch {
		c.publishBatched(from, src, dec, size, depart)
		return
	}
	c.fanOut(from, dec, func(to string) time.Time { return c.arrive(src, c.port(to), size, depart) })
}

// fanOut sends a message to the tracker and every node but its sender
// that is up and reachable, less those the loss rate drops, each at the
// time arrival gives.
func (c *Cluster) fanOut(from string, dec wire.Msg, arrival func(to string) time.Time) {
	send := func(to string) {
		if to == from || !c.reachable(from, to) {
			return
		}
		ep, up := c.epochOf(to)
		if !up {
			return
		}
		if c.cfg.DropRate > 0 && c.rng.Float64() < c.cfg.DropRate {
			c.Dropped++
			return
		}
		c.send(arrival(to), from, to, ep, dec)
	}
	for _, t := range c.trks {
		send(t.id)
	}
	for _, to := range c.order {
		send(to)
	}
}

// sendTo delivers a message to a node at a time, unless the network is
// cut between them by then.
func (c *Cluster) sendTo(at time.Time, from string, h *host, m wire.Msg) {
	c.seq++
	c.queue.push(event{at: int64(at.Sub(c.start)), seq: c.seq, to: h.id, host: h, epoch: h.epoch, kind: eventToNode, from: from, msg: m})
}

// arriveAtNode is the event of sendTo.
func (c *Cluster) arriveAtNode(from string, h *host, m wire.Msg) {
	if !c.reachable(from, h.id) {
		c.Dropped++
		return
	}
	c.Delivered++
	c.deliverToNode(from, h, m)
}

// send delivers a message to a machine (incarnation ep) at a time, unless
// the network is cut between them by then.
func (c *Cluster) send(at time.Time, from, to string, ep int, m wire.Msg) {
	c.seq++
	c.queue.push(event{at: int64(at.Sub(c.start)), seq: c.seq, to: to, epoch: ep, kind: eventSend, from: from, msg: m})
}

// arriveAt is the event of send.
func (c *Cluster) arriveAt(from, to string, m wire.Msg) {
	if !c.reachable(from, to) {
		c.Dropped++
		return
	}
	c.deliver(from, to, m)
}

// upload queues size bytes (times the fan-out) on a machine's uplink and
// returns when they have left, in virtual ns.
func (c *Cluster) upload(p *port, size float64) float64 {
	f := c.cfg.Net.fanout()
	start := max(c.nowNS(), p.upFree)
	p.upFree = start + size*f*secondsPerByte(p.link.Up)*1e9
	p.bytesOut += int64(size * f)
	return p.upFree
}

// relayed returns the time a message that left its sender at depart has
// crossed the network to the edge of any receiver, in virtual ns: the
// sender's latency and the hops beyond the first.
func (c *Cluster) relayed(src *port, size, depart float64) float64 {
	extra := c.cfg.Net.hops(c.net.n) - 1
	t := depart + float64(src.link.Latency)
	if extra > 0 {
		t += float64(extra) * (2*float64(c.net.meanLatency()) + size*secondsPerByte(c.net.meanUp())*1e9)
	}
	return t
}

// intakeRate is the bytes per second at which a machine takes in gossip:
// its downlink, bounded by the mean uplink of the peers that relay it (0:
// unlimited).
func (c *Cluster) intakeRate(p *port) float64 {
	down, up := p.link.Down, c.net.meanUp()
	r := down
	if r <= 0 || (up > 0 && up < r) {
		r = up
	}
	return r
}

// IntakeRate is the bytes per second at which a machine takes in gossip
// (0: unlimited); see intakeRate.
func (c *Cluster) IntakeRate(id string) float64 {
	if p := c.port(id); p != nil {
		return c.intakeRate(p)
	}
	return 0
}

// MeanUplink is the mean uplink of the machines, in bytes per second (0:
// unlimited, when every uplink is).
func (c *Cluster) MeanUplink() float64 { return c.net.meanUp() }

// UpdatesPublished returns how many updates the peers published and their
// bytes on the wire (counted with Net).
func (c *Cluster) UpdatesPublished() (n int, bytes float64) { return c.updatesPublished, c.updateBytes }

// gossipRate is the ns per byte of the messages it needs at which a
// machine takes in gossip (duplicates included).
func (c *Cluster) gossipRate(p *port) float64 {
	return secondsPerByte(c.intakeRate(p)) * 1e9 * c.cfg.Net.duplicates()
}

// takeIn counts the bytes a machine takes in for a gossip message of
// size bytes, duplicates included.
func (c *Cluster) takeIn(p *port, size float64) {
	p.bytesIn += int64(size * c.cfg.Net.duplicates())
}

// bulkBytes is the size from which a message queues behind the bulk on a
// downlink. Smaller ones (control messages) share the link with it, as
// the streams of a multiplexed connection do, and pass at once.
const bulkBytes = 64 << 10

// arrive queues a message on the receiver's downlink and returns when it
// is delivered.
func (c *Cluster) arrive(src, dst *port, size, depart float64) time.Time {
	t := c.relayed(src, size, depart) + float64(dst.link.Latency)
	c.takeIn(dst, size)
	if size < bulkBytes {
		return c.timeAt(t + size*c.gossipRate(dst))
	}
	start := max(t, dst.downFree)
	dst.downFree = start + size*c.gossipRate(dst)
	return c.timeAt(dst.downFree)
}

func (c *Cluster) deliver(from, to string, m wire.Msg) {
	c.Delivered++
	if t := c.trackerOf(to); t != nil {
		c.deliverToTracker(t, from, m)
		return
	}
	c.deliverToNode(from, c.hosts[to], m)
}

// deliverToNode hands a node a message.
func (c *Cluster) deliverToNode(from string, h *host, m wire.Msg) {
	refused, err := h.loop.Receive(c.now, from, m)
	if refused != nil {
		c.trace("%s refused %s from %s: %v", h.id, m.Kind(), from, refused)
	}
	c.drive(err)
}
