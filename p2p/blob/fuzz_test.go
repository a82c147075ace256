package blob

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"github.com/shoal-network/shoal/checkpoint/content"
)

func FuzzReadRequest(f *testing.F) {
	f.Add(request{CID: content.Sum([]byte("x")), MaxLen: 1 << 20}.encode())
	f.Add([]byte{1, 1, 0x80, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := readRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			if !errors.Is(err, errBadRequest) {
				t.Fatalf("error not wrapping errBadRequest: %v", err)
			}
			return
		}
		if content.Check(req.CID) != nil || req.MaxLen < 1 || req.MaxLen > MaxObjectSize {
			t.Fatalf("accepted invalid request %+v", req)
		}
		if enc := req.encode(); !bytes.Equal(enc, b[:len(enc)]) {
			t.Fatalf("non-canonical request accepted")
		}
	})
}

func FuzzReadResponseHeader(f *testing.F) {
	f.Add(appendResponseHeader(nil, StatusOK, 1000), 4096)
	f.Add([]byte{byte(StatusNotFound)}, 10)
	f.Fuzz(func(t *testing.T, b []byte, maxLen int) {
		maxLen &= 1<<31 - 1
		st, n, err := readResponseHeader(bytes.NewReader(b), maxLen)
		if err != nil {
			return
		}
		if n < 0 || n > maxLen || (st != StatusOK && n != 0) {
			t.Fatalf("accepted status %v length %d with max %d", st, n, maxLen)
		}
	})
}
