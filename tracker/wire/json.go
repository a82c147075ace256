package wire

import (
	"encoding/json"
	"fmt"
)

func (m *Hello) MarshalJSON() ([]byte, error)   { return marshalJSON(m) }
func (m *Open) MarshalJSON() ([]byte, error)    { return marshalJSON(m) }
func (m *Update) MarshalJSON() ([]byte, error)  { return marshalJSON(m) }
func (m *Close) MarshalJSON() ([]byte, error)   { return marshalJSON(m) }
func (m *Commit) MarshalJSON() ([]byte, error)  { return marshalJSON(m) }
func (m *Final) MarshalJSON() ([]byte, error)   { return marshalJSON(m) }
func (m *Verdict) MarshalJSON() ([]byte, error) { return marshalJSON(m) }

func (m *Hello) UnmarshalJSON(b []byte) error   { return unmarshalJSON(b, m) }
func (m *Open) UnmarshalJSON(b []byte) error    { return unmarshalJSON(b, m) }
func (m *Update) UnmarshalJSON(b []byte) error  { return unmarshalJSON(b, m) }
func (m *Close) UnmarshalJSON(b []byte) error   { return unmarshalJSON(b, m) }
func (m *Commit) UnmarshalJSON(b []byte) error  { return unmarshalJSON(b, m) }
func (m *Final) UnmarshalJSON(b []byte) error   { return unmarshalJSON(b, m) }
func (m *Verdict) UnmarshalJSON(b []byte) error { return unmarshalJSON(b, m) }

// Messages are kept in JSON as their wire form, so the state file holds
// exactly what was published.
func marshalJSON(m Msg) ([]byte, error) {
	b, err := Marshal(m)
	if err != nil {
		return nil, err
	}
	return json.Marshal(b)
}

func unmarshalJSON[T Msg](b []byte, dst T) error {
	var wire []byte
	if err := json.Unmarshal(b, &wire); err != nil {
		return err
	}
	m, err := Unmarshal(wire)
	if err != nil {
		return err
	}
	got, ok := m.(T)
	if !ok {
		return fmt.Errorf("want a %s message, got %s", dst.Kind(), m.Kind())
	}
	copyMsg(dst, got)
	return nil
}

func copyMsg(dst, src Msg) {
	switch d := dst.(type) {
	case *Hello:
		*d = *src.(*Hello)
	case *Open:
		*d = *src.(*Open)
	case *Update:
		*d = *src.(*Update)
	case *Close:
		*d = *src.(*Close)
	case *Commit:
		*d = *src.(*Commit)
	case *Final:
		*d = *src.(*Final)
	case *Verdict:
		*d = *src.(*Verdict)
	}
}
