// Package simulations rehearses networks of volunteers on one machine: a
// discrete-event engine in virtual time that runs the same node and
// tracker state machines as the daemon (node.Node, tracker.Tracker) over
// a modelled network, with churn, heterogeneous compute and adversaries.
//
// Cluster is the engine: events in one queue ordered by (time, sequence),
// every random choice from one generator seeded with the run's seed, so
// the same seed and the same calls give the same run, event for event.
// Its network model (Network, Link) gives every machine an uplink and a
// downlink that are queues, latencies and gossip hops, message loss and
// partitions; machines can be killed and restarted; jobs take a modelled
// duration per machine. Compute is either real (SharedEngine and
// Adversary train the round's model, each distinct work unit once per
// simulation, shared through a UnitCache) or modelled by its cost
// (CostEngine, whose stand-in results have the properties the protocol
// relies on). Content lives once in a Pool, whatever the number of peers
// that hold it.
//
// At thousands of peers, v1's rule that every peer receives every
// included update makes the simulation quadratic: Cluster.Batch delivers
// a step's updates to each node as one batch, whose arrival the node's
// downlink queue decides, and hands as messages only what each node acts
// on. The node core is told of the batch through its Present hook; its
// form checks and work assignment are computed once per message and step
// (its Validate and Assignments hooks). The bytes each peer would
// download stay in the accounts.
//
// Invariants checks, after every event, that honest peers never hold
// different checkpoints for a finalised step, that finalised steps never
// change, and that no node applies a step without every included update
// in its store. Every error names the seed.
//
// A Scenario (YAML; built-in ones in scenarios/, embedded) describes a
// run; Run simulates it (and its honest, churn-free twin, on request) and
// returns a Report: JSON, a text summary and SVG plots, the same byte for
// byte for the same scenario and seed. `shoal sim` is its command.
//
// The sub-package realstack runs the same kind of round on the real
// stack (the daemons over an in-memory libp2p network) to check the
// engine's predictions.
package simulations
