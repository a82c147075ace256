// Package simulations will rehearse networks of thousands of volunteers on
// one machine: a discrete-event engine in virtual time, driven by a seeded
// RNG, that runs the same node and tracker state machines as the daemon,
// with models of links, churn, heterogeneous compute and adversaries.
//
// The package is a placeholder for that work: it has no code yet.
package simulations
