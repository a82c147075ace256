// Package tracker is the coordinator of a round: a deterministic state
// machine that decides, step after step, which peers take part, which
// work goes into an outer step and which checkpoint the step produced.
// The round it runs is described by a spec (package tracker/round); it
// speaks the messages of package tracker/wire; its driver persists its
// state through a Storage (MemStorage here, a bbolt file in package
// tracker/boltstore).
//
// A Tracker holds no goroutines, sockets or clocks, and does no I/O. Its
// driver passes it each message received (Receive) and the time (Tick),
// and carries out what Ready returns: the State to persist, when a
// decision changed it, the messages to publish, in order, and the events.
// The driver's contract is raft's: persist, then publish. A driver whose
// save fails publishes nothing more and stops driving the tracker.
//
// # Membership
//
// Peers announce themselves, as workers or observers, with a Hello, sent
// when they join and then every round.HeartbeatInterval; a member is live
// until round.Liveness has passed since its last Hello (Members lists the
// live ones), and is forgotten after ForgetAfter of silence. Membership is soft state, rebuilt
// from heartbeats after a restart. A Hello carries its sender's clock
// (wire.Hello.Time): the tracker does not hear one sent more than
// round.Liveness before or after its own now (which is also the
// allowance for skewed clocks), nor one older than the last it heard
// from the peer, so that Hellos replayed by anyone who saw them keep no
// departed peer counted. In a closed round a Hello must carry an
// access token that Config.Admit accepts; peers refused are listed by
// Refused. A peer caught lying is excluded for the rest of the round:
// its messages are ignored and it is no longer counted. A Commit is
// heard only from a member (or a worker the open step names, which a
// restarted tracker knows before it says Hello again): a message from
// a peer that is not a member leaves nothing in the persisted state.
// The counts the tracker decides by (live members, their standing, and
// the standing behind each result committed) are kept as messages
// arrive, so that the work of a Hello, an update or a commit does not
// grow with the number of members.
//
// Joining costs nothing in an open round, so a peer ID is worth nothing
// there: one machine can speak for any number of them. What a member
// weighs is its standing (see Quorum), and admission to the work is
// rate-limited: a step's Open lists the workers with standing or with
// work in a finalised step (established), and of the others
// (newcomers) at most as many as the established (at least 8;
// Config.Newcomers sets another fraction), picked by a hash of the
// round's seed, the step, the attempt and the peer ID, so that a flood of fresh IDs, however early it speaks, takes only its
// share of the newcomers' places, drawn again at every step. In any
// round an Open lists no more members than the step has unit copies,
// nor more than fit in Config.MaxOpenSize bytes (the gossip message
// limit): established workers first, by standing, then the hash order.
// A dispute's checker may be any admitted worker, and is listed too.
//
// # Steps
//
// A step opens (an Open message) once Config.MinMembers workers are live:
// its base is the last finalised checkpoint, its members the live workers
// (bounded, and in an open round rate-limited: see Membership),
// and its units the target's worth (DealtUnits, with Config.Spares extra
// when there are workers to spare), dealt by round.Assign so that every
// peer knows its units. Each worker sends an Update per unit copy it was
// dealt. The step closes (a Close message) when its complete units reach
// the spec's target samples, when nothing more can be expected from the
// live members, or at the spec's deadline. The Close lists the updates to
// aggregate: one per unit, and of a replicated unit whose replicas agree
// on the raw pseudo-gradient, the first replica's. A step that got no
// usable update is dealt again as a new attempt.
//
// The tracker's side holds every payload it includes, so that a Close
// never names one nobody serves. An update the tracker accepts is
// "held" only once its driver has the payload: Ready.Fetch asks for it
// (its CID, size and author, the provider), and Held tells the tracker
// the driver has it, verified, or gave up. A driver stores an update's
// inline Data (checked against its Payload CID) once the tracker has
// accepted the update, and answers the fetch at once. Only held copies
// count as arrived, for closing and for inclusion; a copy given up on is
// awaited no longer. An update not held when the step closes is left out
// (a withheld event) and counts in its author's ledger entry (Withheld);
// a peer that has withheld WithheldLimit updates, and more than it had
// included, is excluded ("withheld payloads"). The payloads held are
// persisted (State.Held): after a restart the others are fetched again.
//
// With the spec's quorum below 1, a step also closes the spec's grace
// after its complete units first reach quorum × target samples
// (State.QuorumAt, persisted), so that it does not wait for its slowest
// volunteers. With the spec's late_weight set, an update that comes after
// its step closed is not lost: the next step's Close includes it, at a
// fraction of its samples, and it is verified like any other (late.go).
//
// A closed step that has no quorum of commits once the spec's deadline
// has passed since it closed (ClosedAt, persisted, so across restarts
// too) is dealt again as a new attempt, with a reopen event saying why:
// no step waits forever on members that left or on a Close they cannot
// apply.
//
// # Quorum on commits
//
// Every member applies the Close to the step's base and sends a Commit
// with the checkpoint it got. When the commits behind one result weigh
// more than half of what the live members in good standing weigh
// together (Quorum, Standing) the step is finalised: a Final message
// records the checkpoint, which becomes the next step's base, and names
// up to wire.MaxProviders of the peers whose commits counted as
// providers. A commit of another result counts as a mismatch in the
// committer's ledger entry.
//
// What a member weighs depends on the round. In a closed round (access
// tokens) every live admitted member, worker or observer, weighs 1: the
// tracker's operator vouched for each. In an open round a member weighs
// its standing: the samples of its units that a replica confirmed in
// finalised steps (Entry.Verified), plus, for an anchor
// (Config.Anchors, peers the operator vouches for: the round's own
// observer), a step's worth (the spec's TargetSamples). A fresh peer ID,
// and an observer of unknown standing, weighs nothing, so any number of
// them can neither finalise a result nor hold one back. While no live
// member has standing (an open round without an anchor, before any
// replica confirmed anything, or with verification off) the quorum is
// a majority of the live peers whose updates the step's Close includes:
// they did the step's work. That bootstrap is the weak point of an
// anchorless open round: peers admitted as newcomers who send the
// updates of most of a step's units decide its checkpoint. Run an open
// round with its observer, and with replication on.
//
// # Disputes
//
// Replicas of a unit that computed different raw pseudo-gradients open a
// Dispute when the step closes, and the unit is left out of the step; so
// does, after the close, a replica's Verdict that its partner's payload
// does not follow from its residual (the unit then stays in). The Opens
// that follow ask a worker other than the replicas to settle the dispute
// by a third computation (a Check, which names the step, unit, attempt
// and the replicas: the checker judges their updates of that attempt and
// no others). The checker's Verdict excludes the replica whose
// pseudo-gradient or payload it contradicts, or the accuser whose
// accusation it does not bear out; a name in it that is not one of the
// dispute's peers is ignored. A peer whose residual or payload the
// checker could not fetch (Verdict.Withheld; see node.WithheldTries) is
// excluded if it has been live all the while since the checker was asked
// (Dispute.AskedAt): it withholds what would clear or convict it. One
// that left meanwhile is not judged, nor is its accuser, and the dispute
// is closed. A replica that could not fetch its agreeing partner's
// residual or payload says so (a Verdict naming the partner in
// Withheld), and the partner's update is audited (see Audits).
//
// # Audits
//
// Which units are replicated follows from the Open, so a liar could lie
// only where no replica will contradict it. Audits close that gap: when
// a step is finalised, wire.Audits picks each update of its Close with
// probability spec.VerificationRate, by a hash of the round's seed and
// the Close (sent after the updates, depending on every included payload
// and, with Config.AuditSecret, on the step's AuditKey, a secret of the
// tracker's revealed only in the Close), and each picked update that no replica confirmed becomes an
// audit: a Dispute of its author alone, settled by a third computation
// like any other. A liar on k units is thus caught with probability
// 1−(1−r)^k whatever it knows when it sends them; the cost is one more
// computation of a unit for a fraction r of the unverified updates,
// besides the replicas' r. Checks go out oldest first, at most
// wire.MaxChecks per Open, and an audit not settled within AuditSteps
// steps is dropped (the nodes no longer keep the update it judges): a
// lie whose audit is dropped goes uncaught. Without an audit secret, a
// worker that sends last, having seen every other update, could predict
// the Close and grind its payload until its update is not picked; the
// daemon derives the secret from the tracker's private key, so the key
// of a Close is the same after a restart. (The key is not committed to in
// the Open: the tracker is trusted to pick honestly, as it is to include
// and finalise.) An update included before its author is caught stays in
// the checkpoints it helped make.
//
// # Ledger
//
// The ledger (Ledger) keeps, per member, the units and samples of its
// updates included in finalised steps, the samples a replica confirmed,
// the disputes it settled as checker, its mismatched commits, and whether
// and why it was excluded.
//
// # Persisted state
//
// State is what survives a restart: the current step, its phase and
// attempt, the base checkpoint, the current step's Open, Close, updates
// and commits, every step's Final, the open disputes and the ledger. New
// resumes from the state its driver loaded (of the same round), counts the restart
// in the state's epoch (which tells peers to send again what the old
// incarnation may have lost), and holds decisions back for a moment while
// members announce themselves again. EncodeState and DecodeState give its
// JSON form, whose messages are kept in their wire form;
// EncodeStateParts and DecodeStateParts keep the Finals apart, so that a
// store writes each only once.
package tracker
