// Package group runs a round's coordinator as a raft group of trackers,
// with etcd's raft library (go.etcd.io/raft/v3) as the consensus: every
// replica holds a tracker.Tracker, and the group replicates the
// tracker's inputs, not its decisions. The leader proposes each input
// it takes (a message in the order it arrived, a tick with the leader's
// clock, the outcome of a payload fetch) as a raft entry; every replica
// applies the committed entries in log order to its own tracker, so that
// every replica holds the same tracker and decides the same. Only the
// leader publishes what its tracker decides, each Open and Close stamped
// with its raft term, and only once the entries that made the decision
// are committed: what a leader publishes is durable on a majority of
// the group, and a deposed leader on the minority side of a partition
// can commit nothing, so it decides nothing new.
//
// A Replica is raft's RawNode and the tracker, driven like raft itself:
// Tick, Step (raft messages from other members), Receive, Clock and
// Held (the leader's inputs), and Ready, which persists the raft log
// (LogStore, a bbolt file), applies what is committed and returns the
// raft messages to send and what the leader is to publish and fetch. It
// holds no goroutines, sockets or clocks; the transport (libp2p streams
// between the members) and the loop are its driver's (node/daemon).
//
// The log does not grow without bound: every SnapshotEntries applied
// entries a replica takes a snapshot of its tracker (tracker.Snapshot:
// its state, membership and clocks) and compacts its log; a replica too
// far behind, or a new one added to the group (AddMember, raft's
// configuration change), catches up from the leader's snapshot.
//
// Members are named by peer ID in the replicated configuration: the
// group's first members by the driver (Config.Members), a member added
// later by its configuration change, under a raft ID never used before
// in the group (AddMember), so that a tracker replaced on a new machine
// is a new member to raft. Every member must run its tracker alike (the
// same spec, genesis, options and secrets): Config.Options is a digest
// of them, carried by every Lead entry, and a member whose own differs
// stops (ErrOptions) rather than decide otherwise from the same log.
//
// When a replica becomes leader it proposes a Lead entry; applying it,
// every replica republishes the current step (only the new leader's
// copy goes out, with its term), and the new leader fetches the payloads
// its tracker still waits for. Peers that see a higher term send again
// what the old leader may have lost, as after a tracker's restart.
package group
