// Package engine is the simulator's discrete-event engine: a Cluster runs
// the same node and tracker state machines as the daemon (node.Node,
// tracker.Tracker) over a modelled network, in virtual time.
//
// Events wait in one queue ordered by (time, sequence), and every random
// choice comes from one generator seeded with the run's seed, so the same
// Config and the same calls give the same run, event for event. A Cluster
// is configured once, by the Config it is made with; what changes while
// it runs are the machines (AddNode, Kill, Restart, KillTracker,
// RestartTracker), the network (Partition, Heal, SetLink) and the events a
// scenario schedules (At).
//
// The network model (Network, Link) gives every machine an uplink and a
// downlink that are queues, latencies and gossip hops, message loss and
// partitions; jobs take a modelled duration per machine. Content lives
// once in a Pool, whatever the number of simulated peers whose Store
// holds it.
//
// At thousands of peers, v1's rule that every peer receives every
// included update makes the simulation quadratic: Config.Batch delivers
// a step's updates to each node as one batch, whose arrival the node's
// downlink queue decides, and hands as messages only what each node acts
// on. The node core is told of the batch through its Present hook (and
// PresentAll, for a Close's whole list at once); its form checks and
// work assignment are computed once per message and step, and the
// verdict of its validation on each of the tracker's messages once per
// message and view (its Validate and Assignments hooks). The bytes each
// peer would download stay in the accounts.
//
// Invariants checks, after every event, that honest peers never hold
// different checkpoints for a finalised step, that finalised steps never
// change, and that no node applies a step without every included update
// in its store. Every error names the seed.
//
// Sybil identities (AddSybils) are peer IDs without a machine: one swarm
// watches the tracker's publications and sends their Hellos, Commits and
// junk Updates, so a thousand of them cost the simulation little. A
// withholder (Withhold) is a node that publishes its updates without
// their data and serves no blob.
//
// The engine knows the protocol's events by their one type, wire.EventKind.
package engine
