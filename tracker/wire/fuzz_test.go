package wire

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzUnmarshal checks that Unmarshal never panics, that every error it
// returns is a MessageError naming a field, and that it accepts only
// canonical encodings: what it decodes marshals back to the same bytes.
func FuzzUnmarshal(f *testing.F) {
	for _, m := range goldenMsgs() {
		f.Add(readWire(f, m.Kind()))
	}
	for _, m := range moreMsgs() {
		b, err := Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b)
		if err != nil {
			var me *MessageError
			if m != nil || !errors.As(err, &me) || me.Field == "" {
				t.Fatalf("Unmarshal: %T %v with message %v, want a MessageError naming a field", err, err, m)
			}
			return
		}
		again, err := Marshal(m)
		if err != nil {
			t.Fatalf("accepted message does not marshal: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted % x\nre-marshals to % x", b, again)
		}
	})
}
