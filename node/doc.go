// Package node is the round protocol's participant: a worker that trains
// work units, or an observer that follows, applies and commits every step
// without training. Node is a deterministic state machine in the manner
// of etcd's raft: messages (Receive), clock ticks (Tick) and the results
// of work it asked for (Done, Fetched) go in; Ready returns what to
// publish, which jobs to run and what to fetch. It holds no goroutines,
// sockets, clocks or randomness, so the daemon, the simulator and the
// tests drive the same code, and the same inputs give the same outputs.
//
// The computations are behind Engine: package node/engine trains the
// round's model for real; a simulation may model their cost instead.
// Content (update payloads, residuals, checkpoints) lives in the driver's
// store, every piece under its CID; the core itself handles only CIDs and
// imports no model, codec or checkpoint code.
//
// # Driving a node
//
// Loop is the driver contract, written once: it hands the core its inputs
// and carries out each Ready in one order through Effects (events; the
// new head, persisted before anything announces it; messages; jobs;
// fetches), puts the inline payload of an Update the core keeps (one of
// a unit copy dealt to its sender, not seen before) in the store before
// the core sees the Update, and answers a fetch of content the store holds at
// once. The daemon (package node/daemon) and the simulator
// (simulations/engine) implement only Effects: goroutines and real time,
// or events and virtual time. Retention is the one bound on what a node
// keeps (steps of updates, blobs, its own pseudo-gradients, checkpoints
// on disk) from which every sweep and cache derives.
//
// A node learns the tracker's exclusions from each Open (Open.Excluded)
// and ignores the messages of excluded peers, as its gossip validator
// does before relaying them.
//
// # The protocol (v1)
//
// The messages are package tracker/wire's (Hello, Open, Update, Close,
// Commit, Final, Verdict). An outer step t, from the agreed checkpoint C_t:
//
//  1. The tracker opens step t with its members; every peer derives the
//     same assignment of work units from the round's seed
//     (round.Assign), a fraction of units going to two peers. With more
//     workers than the target needs, a tracker configured with spares
//     deals extra units, so that the slowest do not hold the step.
//  2. A worker trains each of its units (H inner steps of AdamW, from
//     C_t, on the unit's own data stream), forms the pseudo-gradient
//     Δ = θ(C_t) − θ_local, encodes it with the round's codec and its own
//     error-feedback residual and publishes an Update naming the hash of
//     the raw Δ, the hash of the residual it used and the payload's CID.
//  3. The tracker closes the step when the complete units reach the
//     target samples, when nothing more can come, or at the deadline; the
//     Close lists the included updates in canonical order. In a round
//     with late_weight, a worker still publishes an update it finishes
//     after the Close, and the next step's Close may include it (see
//     package tracker, late.go).
//  4. Every node fetches any included payload it lacks, aggregates them by
//     the round's rule in that order, applies the outer optimizer and
//     publishes Commit{C_{t+1}}; the tracker finalises once the commits
//     behind one result outweigh half of the live members' standing (see
//     package tracker, Quorum) and publishes Final. A node never adopts a
//     head it computed differently itself: computation is deterministic,
//     so a Final (or a next Open) that names another C_{t+1} than the one
//     it computed is evidence against whoever committed it; the node
//     keeps its own, reports the mismatch and fetches nothing (a node that
//     restarted has forgotten what it computed, and follows the tracker).
//  5. A node that falls behind (it restarted, was partitioned or joined
//     late) adopts the head from the next Open or Final and fetches it by
//     CID from the peers that hold it; a node still busy with step t when
//     step t+1 opens keeps the units it was dealt there.
//
// The tracker republishes the current step's messages for newcomers and
// peers behind. Open and Close carry its epoch, which grows at every
// restart from its stored state: a node sends its updates or commit again
// only when it sees its step again in a later epoch (the tracker may have
// lost them), so republishing costs the network nothing else.
//
// # Verification, and what it guarantees
//
// Training is bit-for-bit deterministic, so two honest replicas of a unit
// compute the same raw pseudo-gradient. Their payloads differ (each
// encodes with its own residual), so replication compares the raw hash,
// and the payload is checked against it: the residual a payload was
// encoded with is named in the update and served on request, and
// encoding the raw Δ with it must give the payload bit for bit.
//
//   - Replicas whose raw hashes differ are not included; the tracker asks
//     a third peer (a Check in a later Open) to compute the unit. A
//     replica whose hash differs from the third computation's, or whose
//     payload the third peer cannot reproduce, is excluded for the round.
//   - Replicas that agree each re-encode the other's payload from its
//     residual; a replica that cannot reproduce its partner's payload
//     accuses it, and a third computation settles that too: the liar, or
//     a false accuser, is excluded. A partner that does not serve its
//     residual is not accused (it may have left): the replica names it
//     as withholding, and the tracker audits its update.
//   - After a step is finalised, a fraction r (the verification rate) of
//     its included updates, picked from the Close (wire.Audits), are
//     audited: a third peer computes the unit and re-encodes the
//     author's payload from its residual, and an author it contradicts
//     is excluded. The pick is made after the updates were sent, so a
//     liar cannot aim its lies at the units that will go unchecked.
//   - A third computation costs the checker one inner step, not H: an
//     update names the trace of its training state after each inner step
//     (package gradient/trace); the checker recomputes only the first
//     step on which the disputants' traces differ, from the state before
//     it, which they agree on and a disputant serves (bisect.go), and
//     recomputes all H steps only if that state does not come within the
//     step deadline or an update names no trace.
//
// A checker judges only the updates that the peers its Check names sent
// in the Check's attempt (the replicas of a dispute, the author of an
// audit): no one else's update can enter its verdict, fill its two "bad"
// places ahead of the liar, or hold it up. A peer whose residual or
// payload the checker cannot fetch in WithheldTries tries (one per
// heartbeat interval) is named in the verdict as withholding, and the
// tracker excludes it if it has been live since the check was asked; an
// honest volunteer that left meanwhile is not judged, and neither is a
// liar that leaves before its check (in an open round it can come back
// under a new ID in any case). A node runs an audit only once it has no
// unit of the open step left to train, so audits use the time a worker
// waits between steps rather than delay the step; a dispute is checked
// at once.
//
// Every Open lists the peers the tracker has excluded (Open.Excluded),
// and a node takes the latest Open's list as the round's word: Validate
// ignores the messages of those peers but their Hellos, so the node
// spends nothing on them and relays none of them.
//
// Guaranteed, for a replicated unit with at least one honest replica and
// an honest checker: a wrong raw result or a payload that does not follow
// from the claimed computation is detected, and the liar excluded, within
// the few steps that the dispute takes. A lie on a unit that is not
// replicated is audited with probability r, decided only once the Close
// exists: with verification rate r, a peer that lies on k of its
// unreplicated units survives with probability (1−r)^k, even if it lies
// only where it knows from the Open that no replica will contradict it
// (as long as its audits are settled: at most wire.MaxChecks checks go
// out per Open, and an audit unsettled after tracker.AuditSteps steps is
// dropped). An audit costs one more computation of the unit by a
// checker; r of the unverified updates are audited. Robust aggregation
// rules (median, trimmed mean, clipping) bound what the lies can do
// before they are caught.
//
// Not guaranteed: an update that was included before its liar was caught
// stays in the checkpoints it helped make; without the tracker's audit
// key in the Close (a tracker run without an audit secret), a worker
// that sends its update last, having seen all the others, could predict
// the Close and choose its lie's bytes so that the update is not
// audited; two colluding replicas of the
// same unit agree on a lie; a dishonest checker can frame a replica or
// clear a liar (the tracker trusts the third computation); the residual a
// peer names is whatever it says it used, so the check proves the payload
// follows from the raw Δ and that residual, not that the residual is the
// true history of the peer's error feedback (a peer can only choose it to
// bend its own payload, within the codec's error); and the tracker itself
// is trusted to order, include and finalise honestly (its messages are
// signed by gossip, so peers can prove what it said).
//
// # Threat model, and what each defence guarantees
//
// The attacker of an open round has free peer IDs (any number of keys,
// all behind one connection if it likes), one fast link, and the
// protocol's code; it may train honestly, lie, stay silent, flood, or
// withhold what it announced, and it adapts to everything public (the
// Opens, the Closes, the other peers' updates). It does not control the
// tracker, the round's own observer (the anchor, run beside the
// tracker), or a majority of the verified work. Figures below were
// measured on a 2-core AMD EPYC (Zen 5, AVX-512).
//
//   - Sybil votes. A commit weighs its committer's standing: the samples
//     of its units that a replica confirmed, or one step's worth for an
//     anchor; fresh IDs and observers of unknown standing weigh nothing,
//     so any number of them can neither finalise a checkpoint nor stall
//     finalisation (TestSybilQuorumTakeover, TestSilentSybilsDoNotStall).
//     Admission to the work is rate-limited (package tracker,
//     Membership), and an Open lists no more members than the step has
//     unit copies and fits the gossip limit whatever the membership
//     (100,000 live workers: 19,782 members in 1,048,524 bytes). Honest
//     nodes never adopt a checkpoint they computed differently themselves.
//     Guaranteed while the live anchors and honest verified work
//     outweigh the attacker's verified work; an open round without an
//     anchor is only as safe as its bootstrap quorum until work is
//     verified.
//   - Withheld payloads. The tracker includes an update only once its
//     side holds the payload (inline, or fetched from the author), and
//     serves it; a closed step without a quorum by the deadline is dealt
//     again. No step waits forever on a payload, across restarts too.
//   - Junk. Validate accepts an Update only from the peer the node's own
//     view of the Open dealt that unit copy to, in that attempt, before
//     anything is stored or relayed: a non-member's update costs one
//     decode and a lookup, no state, disk or relay bandwidth
//     (TestJunkUpdatesNotRelayed). Every host takes at most 20 messages
//     a second (200 at once) from one author and relays none beyond, and
//     gossip counts in the bandwidth caps (--max-upload, --max-download)
//     with the content it serves and fetches.
//   - Tracker work. The tracker's work per message does not grow with
//     the membership (BenchmarkReceive: 1.2, 0.8 and 1.5–1.8 µs per
//     message at 100, 10,000 and 100,000 members); only members get
//     ledger entries.
//   - Lies. A replicated unit's replicas must agree on the raw
//     pseudo-gradient, and each re-encodes the other's payload. After a
//     step is finalised, a fraction r of its unconfirmed updates are
//     audited, picked from the Close and the tracker's audit key revealed
//     in it, so a liar on k units escapes with probability (1−r)^k
//     whatever it knows when it sends them (measured 0.3255 for r = 0.2,
//     k = 5, against 0.3277; a last sender guesses its own audit right
//     0.68 of the time, which is chance). A third computation is cheap:
//     it bisects the disputants' traces and recomputes one inner step
//     (gpt-tiny, H = 50: 31 ms instead of 0.76 s), the tracing costing
//     about 10% of an inner step.
//   - Subverted disputes. A checker judges only the updates of the peers
//     its Check names, in its attempt; a party that withholds what the
//     check needs loses it; a false accuser is excluded.
//
// The simulator's open-internet scenario puts these together: 200 home
// volunteers with 20%/h churn, 10 of them withholding their payloads and
// 10 lying wherever the Open says no replica checks them, against 1,000
// Sybil identities (silent, voting for the attacker's checkpoint, or
// flooding junk). All 30 steps are finalised, the final loss is within
// 0.1% of the honest twin's, every liar is excluded by step 18 and no
// honest peer ever is (shoal sim open-internet; TestOpenInternetAttacks
// runs the same attacks against real processes).
//
// What remains trusted or unbounded is listed under Not guaranteed above.
package node
