// Package p2p moves bytes between shoal peers. A Host bundles:
//
//   - a libp2p host listening on TCP and QUIC, with a persistent Ed25519
//     identity (LoadOrCreateIdentity: a 0600 file reused across restarts; a
//     corrupt file is an error, never silently replaced), a resource
//     manager and a connection manager;
//   - Gossip: gossipsub with strict signing, message IDs that are the
//     sha2-256 of the payload (so a message's ID is its payload's CID), an
//     explicit size limit on every node, peer scoring, and per-topic
//     validators that call the caller's Validator (Accept, Reject or
//     Ignore) after the built-in size and replay checks;
//   - Discovery: bootstrap peers dialled at start and redialled when they
//     drop, a Kademlia DHT under shoal's own protocol prefix, a rendezvous
//     per round (peers provide and look up RendezvousCID(round)), and
//     optional mDNS;
//   - the blob exchange (package p2p/blob): content-addressed blobs stored
//     as fixed-size chunks under a manifest whose CID is the blob's root,
//     fetched from several providers at once with every chunk verified
//     against its CID before it is stored;
//   - the reachability self-test (AutoNAT), reported in plain words.
//
// Bandwidth caps (Options.Blob's UploadRate and DownloadRate) are one
// token bucket per direction that the blob exchange and gossipsub's
// streams draw from alike: gossip a host relays or receives, control
// included, counts against the same caps as content (GossipStats' WireIn
// and WireOut), and a relay over its upload cap falls behind and drops
// rather than sending more.
//
// Every remote input is bounded and checked: oversized or malformed
// messages, garbage, messages for rounds this host has not joined, replays
// and absurd requests are rejected or ignored with a rate-limited log line
// naming the peer and the reason, and the host keeps serving others.
//
// The package knows nothing of the training protocol: validation arrives
// as a Validator function, storage as a blob.Store. NAT traversal (port
// mapping, hole punching, relays) is on in DefaultOptions and off in
// LoopbackOptions, which dial nothing beyond the loopback interface.
//
// Every goroutine the package starts belongs to a component with a Close
// that stops it and waits for it.
package p2p
