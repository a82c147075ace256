package wire

import (
	"flag"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// cidOf returns a content CID named by s, for tests.
func cidOf(s string) cid.Cid { return content.Sum([]byte(s)) }

// Peer IDs for tests.
const (
	peerA    = "12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NY"
	peerACID = "bafzaajaiaejcaunrthxxaibd2gjfu7ohy72b3ln3j2qfqyqbwylvy5voa2bgjp6v" // peerA as a libp2p-key CID
	peerB    = "12D3KooWPhE3uLopstLtMMJpRoK2NaCvW3FMs4grT9PuWjZB945h"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden encodings in testdata/wire")

// peers returns n peer names.
func peers(n int) []string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprintf("peer-%03d", i)
	}
	return ps
}
