package group

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/tracker/wire"
)

// Kind is the kind of an input the group replicates.
type Kind uint8

const (
	KindReceive Kind = 1 // a message from a peer (tracker.Receive)
	KindTick    Kind = 2 // the leader's clock (tracker.Tick)
	KindHeld    Kind = 3 // the outcome of a payload fetch (tracker.Held)
	KindLead    Kind = 4 // a new leader took over (tracker.Republish)
)

// Input is one input of the replicated tracker, as a raft entry carries
// it.
type Input struct {
	Kind Kind
	At   time.Time // the leader's clock when it took the input
	// From and Msg are a KindReceive's sender and message (an Update
	// without its inline Data, which the tracker does not keep).
	From string
	Msg  wire.Msg
	// Payload and OK are a KindHeld's payload and outcome.
	Payload cid.Cid
	OK      bool
	// Term is a KindLead's term, and Options the digest of the options
	// the leader's tracker runs with (Config.Options).
	Term    uint64
	Options []byte
}

// inputVersion is the first byte of an encoded Input.
const inputVersion = 1

// MarshalInput encodes an input: a version byte, the kind, the time in
// unix nanoseconds (uvarint), then per kind: the sender (uvarint length
// and bytes) and the message in wire form (the rest); the payload CID
// (uvarint length and bytes) and the outcome (a byte, 0 or 1); the term
// (uvarint) and the options' digest (uvarint length and bytes).
func MarshalInput(in *Input) ([]byte, error) {
	ns := in.At.UnixNano()
	if ns < 0 {
		return nil, fmt.Errorf("input at %v: before 1970", in.At)
	}
	b := []byte{inputVersion, byte(in.Kind)}
	b = binary.AppendUvarint(b, uint64(ns))
	switch in.Kind {
	case KindReceive:
		if in.Msg == nil || in.From == "" {
			return nil, errors.New("input: a message needs its sender and the message")
		}
		m := in.Msg
		if u, ok := m.(*wire.Update); ok && len(u.Data) > 0 {
			c := *u
			c.Data = nil
			m = &c
		}
		enc, err := wire.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		b = binary.AppendUvarint(b, uint64(len(in.From)))
		b = append(b, in.From...)
		b = append(b, enc...)
	case KindTick:
	case KindHeld:
		if !in.Payload.Defined() {
			return nil, errors.New("input: a payload outcome without its payload")
		}
		p := in.Payload.Bytes()
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
		ok := byte(0)
		if in.OK {
			ok = 1
		}
		b = append(b, ok)
	case KindLead:
		b = binary.AppendUvarint(b, in.Term)
		b = binary.AppendUvarint(b, uint64(len(in.Options)))
		b = append(b, in.Options...)
	default:
		return nil, fmt.Errorf("input: unknown kind %d", in.Kind)
	}
	return b, nil
}

// UnmarshalInput decodes an input MarshalInput encoded, and only such:
// the bytes must be what MarshalInput makes of the input.
func UnmarshalInput(b []byte) (*Input, error) {
	in, err := unmarshalInput(b)
	if err != nil {
		return nil, err
	}
	again, err := MarshalInput(in)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, b) {
		return nil, errors.New("input: not in canonical form")
	}
	return in, nil
}

func unmarshalInput(b []byte) (*Input, error) {
	if len(b) < 2 || b[0] != inputVersion {
		return nil, errors.New("input: not an input of this version")
	}
	in := &Input{Kind: Kind(b[1])}
	b = b[2:]
	ns, n := binary.Uvarint(b)
	if n <= 0 || ns > math.MaxInt64 {
		return nil, errors.New("input: bad time")
	}
	in.At = time.Unix(0, int64(ns)).UTC()
	b = b[n:]
	str := func(what string) ([]byte, error) {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return nil, fmt.Errorf("input: bad %s", what)
		}
		s := b[n : n+int(l)]
		b = b[n+int(l):]
		return s, nil
	}
	switch in.Kind {
	case KindReceive:
		from, err := str("sender")
		if err != nil {
			return nil, err
		}
		in.From = string(from)
		if in.Msg, err = wire.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		b = nil
	case KindTick:
	case KindHeld:
		p, err := str("payload")
		if err != nil {
			return nil, err
		}
		if in.Payload, err = cid.Cast(p); err != nil {
			return nil, fmt.Errorf("input: payload: %w", err)
		}
		if len(b) != 1 || b[0] > 1 {
			return nil, errors.New("input: bad outcome")
		}
		in.OK = b[0] == 1
		b = b[1:]
	case KindLead:
		t, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("input: bad term")
		}
		in.Term = t
		b = b[n:]
		o, err := str("options")
		if err != nil {
			return nil, err
		}
		if len(o) > 0 {
			in.Options = bytes.Clone(o)
		}
	default:
		return nil, fmt.Errorf("input: unknown kind %d", in.Kind)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("input: %d trailing bytes", len(b))
	}
	return in, nil
}
