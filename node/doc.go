// Package node will hold the round protocol core, a pure state machine in
// the manner of etcd's raft (messages and ticks in, effects out; no
// goroutines, sockets, clocks or global randomness inside), and the Daemon
// that drives it over the p2p package. The same core is driven by the
// daemon, the simulator and the tests.
//
// The package is a placeholder for that work: it has no code yet.
package node
