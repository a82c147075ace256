package daemon

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/shoal-network/shoal/tracker/wire"
)

// The gossip envelope. Gossip message IDs are content hashes, so two
// peers publishing the same protocol message (two Hellos with the same
// head) or one peer publishing it again (a tracker republishing an Open
// after a restart) must not produce the same bytes. An envelope is
//
//	version 1 (1 byte) | author peer ID (uvarint length, bytes) | sequence (uvarint) | wire message
//
// The author must be the gossip message's signed author; the sequence
// number only has to differ between a peer's publications.

const envelopeVersion = 1

func seal(author string, seq uint64, msg []byte) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64*2+len(author)+len(msg))
	b = append(b, envelopeVersion)
	b = binary.AppendUvarint(b, uint64(len(author)))
	b = append(b, author...)
	b = binary.AppendUvarint(b, seq)
	return append(b, msg...)
}

var errEnvelope = errors.New("malformed envelope")

// open splits an envelope.
func open(b []byte) (author string, seq uint64, msg []byte, err error) {
	if len(b) < 1 || b[0] != envelopeVersion {
		return "", 0, nil, fmt.Errorf("%w: unknown version", errEnvelope)
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 || n > wire.MaxPeerLen || uint64(len(b)-k) < n {
		return "", 0, nil, fmt.Errorf("%w: bad author", errEnvelope)
	}
	author = string(b[k : k+int(n)])
	b = b[k+int(n):]
	seq, k = binary.Uvarint(b)
	if k <= 0 {
		return "", 0, nil, fmt.Errorf("%w: bad sequence number", errEnvelope)
	}
	return author, seq, b[k:], nil
}
