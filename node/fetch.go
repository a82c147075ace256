package node

import (
	"slices"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/tracker/wire"
)

// Content: who provides what, and fetches.

func (n *Node) addProvider(id cid.Cid, peer string) {
	ps := n.providers[id]
	if slices.Contains(ps, peer) {
		return
	}
	if len(ps) >= 2*wire.MaxProviders {
		ps = ps[1:]
	}
	n.providers[id] = append(ps, peer)
	if len(n.providers) > 64 {
		// Keep the map small: providers of old checkpoints are of no use.
		// Which entry goes must not depend on the map's iteration order
		// (the core is deterministic): the least CID that is not in use.
		var drop cid.Cid
		for k := range n.providers {
			if !k.Equals(id) && !k.Equals(n.head) && !k.Equals(n.catchUp) && (!drop.Defined() || k.KeyString() < drop.KeyString()) {
				drop = k
			}
		}
		delete(n.providers, drop)
	}
}

// addProviders is addProvider of each peer in turn, with one lookup of
// the known providers when it knows them all (a republished Final names
// the same providers again).
func (n *Node) addProviders(id cid.Cid, peers []string) {
	if len(peers) == 0 {
		return
	}
	ps := n.providers[id]
	for _, p := range peers {
		if !slices.Contains(ps, p) {
			n.addProvider(id, p)
			ps = n.providers[id]
		}
	}
}

func (n *Node) providersFor(id cid.Cid, extra []string) []string {
	out := slices.Clone(extra)
	for _, p := range n.providers[id] {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if !slices.Contains(out, n.tracker) {
		out = append(out, n.tracker)
	}
	return out
}

// fetch asks for content unless it is here or on its way.
func (n *Node) fetch(id cid.Cid, kind FetchKind, providers []string) {
	if n.has(id) {
		return
	}
	if f, ok := n.fetching[id]; ok {
		for _, p := range providers {
			if !slices.Contains(f.providers, p) {
				f.providers = append(f.providers, p)
			}
		}
		return
	}
	n.fetching[id] = &pendingFetch{kind: kind, providers: slices.Clone(providers)}
	n.ready.Fetches = append(n.ready.Fetches, Fetch{CID: id, Kind: kind, Providers: n.providersFor(id, providers)})
}

// Fetched reports the end of a fetch: ok if the content is now in the
// store, verified.
func (n *Node) Fetched(now time.Time, id cid.Cid, ok bool) {
	if n.stopped {
		return
	}
	n.now = now
	f := n.fetching[id]
	if f == nil {
		if ok {
			n.keep(id)
		}
		return
	}
	if !ok {
		f.failed, f.failedAt = true, now
		f.failures++
		if f.failures >= WithheldTries && f.kind == FetchBlob {
			n.withheld(id)
		}
		return
	}
	delete(n.fetching, id)
	n.keep(id)
	if id.Equals(n.catchUp) {
		step := n.catchTo
		n.catchUp = cid.Undef
		switch {
		case step > n.headStep || (step == n.headStep && !id.Equals(n.head)):
			n.event(wire.EventCatchUp, step, "now at C_%d = %s", step, id)
			n.abandonStep(step, id)
			n.setHead(step, id)
		case step == n.headStep && id.Equals(n.head):
			// The genesis the round names is here now: the driver
			// persists it as the head (and an observer measures it).
			n.ready.HeadStep, n.ready.Head, n.ready.HeadChanged = step, id, true
		}
	}
	n.progress()
}

// fetchIncluded fetches the payloads of a Close's included updates that
// the node lacks, each from its sender.
func (n *Node) fetchIncluded(included []wire.Included) {
	if n.cfg.PresentAll != nil && n.cfg.PresentAll(included) {
		return // fetch would find each present
	}
	for _, in := range included {
		n.fetch(in.Payload, FetchBlob, []string{in.Peer})
	}
}

// withheld stops the verifications waiting for a blob that could not be
// fetched in WithheldTries tries: a check drops the claims that need it
// and names their senders as withholding; a cross-check gives up and
// names its partner as withholding, which asks the tracker for an audit. The fetch
// stops too, unless the step being applied still needs the blob.
func (n *Node) withheld(id cid.Cid) {
	needs := func(cl Claim) bool { return cl.Update.Residual.Equals(id) || cl.Update.Payload.Equals(id) }
	for _, k := range n.verifyKeys() {
		v := n.verifies[k]
		if v.started || !slices.ContainsFunc(v.job.Updates, needs) {
			continue
		}
		if !v.job.Checked {
			// The partner did not serve it: ask the tracker to audit the
			// partner's update rather than accuse it (it may have left).
			delete(n.verifies, k)
			cl := v.job.Updates[slices.IndexFunc(v.job.Updates, needs)]
			vd := &wire.Verdict{Round: n.round, Step: k.step, Unit: k.unit, Raw: cl.Update.Raw, Withheld: []string{cl.Peer}}
			n.publish(vd)
			n.event(wire.EventVerdict, k.step, "unit %d: %s of %s was not served after %d tries: asking for an audit", k.unit, id, cl.Peer, WithheldTries)
			continue
		}
		var kept []Claim
		for _, cl := range v.job.Updates {
			if !needs(cl) {
				kept = append(kept, cl)
			} else if !slices.Contains(v.withheld, cl.Peer) {
				v.withheld = append(v.withheld, cl.Peer)
				n.event(wire.EventError, k.step, "check of unit %d: %s of %s was not served after %d tries: judging without it", k.unit, id, cl.Peer, WithheldTries)
			}
		}
		v.job.Updates = kept
	}
	for _, v := range n.verifies {
		if slices.ContainsFunc(v.job.Updates, needs) {
			return
		}
	}
	if c := n.close; c != nil && slices.ContainsFunc(c.Included, func(in wire.Included) bool { return in.Payload.Equals(id) }) {
		return
	}
	delete(n.fetching, id)
	n.progress()
}
