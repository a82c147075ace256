// Package simulations rehearses networks of volunteers on one machine:
// scenarios, runs, reports and plots over the discrete-event engine of
// package engine, which runs the same node and tracker state machines as
// the daemon over a modelled network, with churn, heterogeneous compute
// and adversaries.
//
// Compute is either real (SharedEngine and Adversary train the round's
// model, each distinct work unit once per simulation, shared through a
// UnitCache) or modelled by its cost (CostEngine, whose stand-in results
// have the properties the protocol relies on).
//
// A Scenario (YAML; built-in ones in scenarios/, embedded) describes a
// run; Run simulates it (and its honest, churn-free twin, on request) and
// returns a Report: JSON, a text summary and SVG plots, the same byte for
// byte for the same scenario and seed. `shoal sim` is its command.
//
// Adversaries are peers that run a node and cheat (Behaviours), or Sybil
// identities (Sybils) that cost neither their attacker nor the simulator
// a node: the engine's swarm says their Hellos, votes and junk for them.
// A scenario's expect block (Expect) states what its run must show; the
// report lists each expectation, met or not, with what was measured.
//
// The sub-package realstack runs the same kind of round on the real
// stack (the daemons over an in-memory libp2p network) to check the
// engine's predictions.
package simulations
