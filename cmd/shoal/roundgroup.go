package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-network/shoal/node/daemon"
)

// roundGroupOptions are the arguments and flags of `shoal round group
// add|remove`.
type roundGroupOptions struct {
	Op      string // "add" or "remove"
	Target  string // the leader's dashboard
	Peer    string
	Timeout time.Duration
}

func newCmdRoundGroup(f *factory, runF func(context.Context, *roundGroupOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Add a tracker to a round's tracker group, or remove one",
		Long: `Change the members of a round's tracker group (raft's configuration
change), through the leader's dashboard (on this machine: the dashboard
takes these requests only from the loopback interface).

'remove URL PEER' takes a tracker out of the group, so that the group no
longer counts it (a tracker whose machine is gone for good). 'add URL
PEER' adds one of the trackers the spec names (volunteers follow no
other) with a new raft ID, which it prints; start that tracker with
'shoal round start --join ID' and an empty data directory holding the
tracker's identity: it catches up from the leader, from a snapshot if the
leader's log no longer reaches back to the start.`,
		Example: `  shoal round group remove 127.0.0.1:8080 12D3KooW...
  shoal round group add 127.0.0.1:8080 12D3KooW...`,
	}
	for _, op := range []string{"add", "remove"} {
		o := &roundGroupOptions{Op: op}
		sub := &cobra.Command{
			Use:   op + " URL PEER",
			Short: map[string]string{"add": "Add a tracker the spec names to the group", "remove": "Remove a tracker from the group"}[op],
			Long: map[string]string{
				"add": `Ask the group's leader, through its dashboard at URL (on this machine),
to add PEER, one of the trackers the spec names, to the group under a new
raft ID. The ID is printed on standard output: start the tracker with
'shoal round start --join ID' on an empty data directory holding PEER's
identity (tracker.key); it catches up from the leader.`,
				"remove": `Ask the group's leader, through its dashboard at URL (on this machine),
to remove PEER from the group: the group no longer counts it in its
quorum nor sends it anything. Use it for a tracker whose machine is gone
for good, before adding its replacement.`,
			}[op],
			Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				o.Target, o.Peer = args[0], args[1]
				if runF != nil {
					return runF(cmd.Context(), o)
				}
				return runRoundGroup(cmd.Context(), f, o)
			},
		}
		sub.Flags().DurationVar(&o.Timeout, "timeout", 30*time.Second, "give up after this long")
		cmd.AddCommand(sub)
	}
	return cmd
}

// groupAnswer is what the dashboard answers a group change with.
type groupAnswer struct {
	RaftID string `json:"raft_id,omitempty"`
	Error  string `json:"error,omitempty"`
}

func runRoundGroup(ctx context.Context, f *factory, o *roundGroupOptions) error {
	u := o.Target
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	u = strings.TrimSuffix(u, "/") + "/api/group/" + o.Op
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(url.Values{"peer": {o.Peer}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the dashboard: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	var a groupAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("%s answered %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	if a.Error != "" {
		return fmt.Errorf("%s", a.Error)
	}
	switch o.Op {
	case "add":
		fmt.Fprintf(f.Err, "proposed to add %s; start it with --join %s\n", o.Peer, a.RaftID)
		fmt.Fprintln(f.Out, a.RaftID)
	default:
		fmt.Fprintf(f.Err, "proposed to remove %s\n", o.Peer)
	}
	return nil
}

// groupHandler serves the group changes of a tracker group's member:
// POST /api/group/add and /api/group/remove with a form value peer, from
// the loopback interface only.
func groupHandler(td *daemon.Tracker) http.Handler {
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, code int, a groupAnswer) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(a)
	}
	guard := func(w http.ResponseWriter, r *http.Request) bool {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			answer(w, http.StatusForbidden, groupAnswer{Error: "group changes are taken only from this machine"})
			return false
		}
		return true
	}
	mux.HandleFunc("POST /api/group/add", func(w http.ResponseWriter, r *http.Request) {
		if !guard(w, r) {
			return
		}
		id, err := td.AddMember(r.Context(), r.FormValue("peer"))
		if err != nil {
			answer(w, http.StatusConflict, groupAnswer{Error: err.Error()})
			return
		}
		answer(w, http.StatusOK, groupAnswer{RaftID: strconv.FormatUint(id, 16)})
	})
	mux.HandleFunc("POST /api/group/remove", func(w http.ResponseWriter, r *http.Request) {
		if !guard(w, r) {
			return
		}
		if err := td.RemoveMember(r.Context(), r.FormValue("peer")); err != nil {
			answer(w, http.StatusConflict, groupAnswer{Error: err.Error()})
			return
		}
		answer(w, http.StatusOK, groupAnswer{})
	})
	return mux
}
