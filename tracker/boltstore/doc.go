// Package boltstore keeps a tracker's State in a bbolt database file:
// BoltStorage, opened by OpenBolt, is a tracker.Storage.
//
// Every Save is one transaction, synced to disk before Save returns, so a
// crash at any moment leaves either the state before the Save or the
// state after it. A Save writes the Finals added since the last one and
// the rest of the state, so its cost does not grow with the length of the
// round. The file is locked while it is open: a second OpenBolt of the
// same file, from this process or another, fails after about a second.
// OpenBolt creates a missing file (mode 0600) and refuses one that is not
// a tracker database of a layout it reads; Load reports a state that does
// not decode as an error naming the file, never as an empty database. The
// layout is described at BoltStorage.
package boltstore
