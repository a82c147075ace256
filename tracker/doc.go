// Package tracker will hold what a round's coordinator decides: the round
// spec and its canonical encoding (the round ID is its CID), membership,
// deterministic work assignment with replication, the opening and closing
// of steps, quorum on checkpoint commits, and the contribution ledger.
//
// The package is a placeholder for that work: it has no code yet.
package tracker
