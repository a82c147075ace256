// Package p2p will move bytes between peers: the libp2p host with its
// persistent identity, discovery (bootstrap, DHT rendezvous on the round
// ID, mDNS), gossipsub topics whose validators call the protocol core's
// pure validation functions, and a verified, content-addressed blob
// exchange for checkpoints, shards and oversized updates. It knows nothing
// of the training protocol beyond the small interfaces package node
// declares.
//
// The package is a placeholder for that work: it has no code yet.
package p2p
