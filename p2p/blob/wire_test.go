package blob

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/shoal-network/shoal/checkpoint/content"
)

func TestRequestRoundTrip(t *testing.T) {
	want := request{CID: content.Sum([]byte("x")), MaxLen: 12345}
	got, err := readRequest(bufio.NewReader(bytes.NewReader(want.encode())))
	if err != nil {
		t.Fatal(err)
	}
	if !got.CID.Equals(want.CID) || got.MaxLen != want.MaxLen {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestReadRequestRejects(t *testing.T) {
	c := content.Sum([]byte("x")).Bytes()
	req := func(version, op byte, cidLen uint64, cb []byte, maxLen uint64) []byte {
		b := []byte{version, op}
		b = binary.AppendUvarint(b, cidLen)
		b = append(b, cb...)
		return binary.AppendUvarint(b, maxLen)
	}
	cases := map[string][]byte{
		"empty":         nil,
		"garbage":       []byte("GET / HTTP/1.1\r\n\r\n"),
		"bad version":   req(2, opGet, uint64(len(c)), c, 10),
		"bad op":        req(1, 9, uint64(len(c)), c, 10),
		"zero cid len":  req(1, opGet, 0, nil, 10),
		"huge cid len":  req(1, opGet, 1<<40, c, 10),
		"short cid":     req(1, opGet, uint64(len(c)+5), c, 10)[:2+1+len(c)],
		"trailing cid":  req(1, opGet, uint64(len(c)+1), append(append([]byte{}, c...), 0), 10),
		"bad cid":       req(1, opGet, 4, []byte{1, 2, 3, 4}, 10),
		"zero max":      req(1, opGet, uint64(len(c)), c, 0),
		"absurd max":    req(1, opGet, uint64(len(c)), c, 1<<62),
		"missing max":   req(1, opGet, uint64(len(c)), c, 10)[:2+1+len(c)],
		"sha512 cid":    req(1, opGet, 4, []byte{1, 0x55, 0x13, 0}, 10),
		"overlong vint": append([]byte{1, opGet, 0x80 | byte(len(c)), 0x00}, c...),
	}
	for name, b := range cases {
		if _, err := readRequest(bufio.NewReader(bytes.NewReader(b))); !errors.Is(err, errBadRequest) {
			t.Errorf("%s: readRequest = %v, want errBadRequest", name, err)
		}
	}
}

func TestReadResponseHeader(t *testing.T) {
	hdr := appendResponseHeader(nil, StatusOK, 100)
	st, n, err := readResponseHeader(bytes.NewReader(hdr), 100)
	if err != nil || st != StatusOK || n != 100 {
		t.Fatalf("got %v %d %v", st, n, err)
	}
	if _, _, err := readResponseHeader(bytes.NewReader(hdr), 99); !errors.Is(err, errBadResponse) {
		t.Fatalf("oversized offer: %v", err)
	}
	if _, _, err := readResponseHeader(bytes.NewReader([]byte{77}), 99); !errors.Is(err, errBadResponse) {
		t.Fatalf("unknown status: %v", err)
	}
	st, _, err = readResponseHeader(bytes.NewReader([]byte{byte(StatusBusy)}), 99)
	if err != nil || st != StatusBusy {
		t.Fatalf("busy: %v %v", st, err)
	}
}
