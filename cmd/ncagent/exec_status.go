package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ncagent/ncagent/ipc"
)

// printSessions lists open exec sessions under the accounts.
func printSessions(w io.Writer, list []ipc.SessionStatus, now time.Time) {
	if len(list) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nEXEC PID\tACCOUNT\tREQUESTS\tSINCE\tCOMMAND\tLAST ERROR")
	for _, s := range list {
		cmd := s.Command
		if len(cmd) > 48 {
			cmd = cmd[:47] + "…"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", s.PID, s.Account, s.Requests, now.Sub(s.Opened).Truncate(time.Second), cmd, s.LastError)
	}
	tw.Flush()
}
