// Package wire holds the messages of the round protocol (v1) and their
// codec: Hello, Open, Update, Close, Commit, Final and Verdict, each a Msg.
//
// Every message travels on the round's gossip topic. The transport
// authenticates its sender (gossipsub with strict signing, or the test
// network), so no message carries a signature of its own, and the sender
// is passed beside the message, never read from it.
//
// A message's wire form is canonical: Marshal of a valid message gives one
// byte string, and Unmarshal accepts exactly the byte strings Marshal
// makes (re-encoding what it decodes gives the same bytes). That makes the
// hash of a message's bytes a sound gossip message ID. Decoding is bounded
// by the Max constants, so hostile bytes cannot make it allocate without
// limit; its errors are *MessageError values naming the field at fault
// (errors.Is ErrMessage). WellFormed checks a message built in Go by the
// same rules, and SortChecks and SortIncluded put its lists in their
// canonical order. In JSON a message is its wire form, so a stored state
// holds exactly what was published.
//
// Validate is the cheap check the gossip layer makes of every message
// before it delivers or relays it: the form, the round, the sender's
// standing, who may send the kind of message and whether its step is one
// the viewer (a View: the tracker or a node) can use. It says whether to
// Accept, Ignore or Reject the message; it does not check content against
// state the viewer does not have.
package wire
