// Command exporter is the export service in one binary with four roles:
// trigger (HTTP API), worker (render tasks), scheduler (maintenance) and
// all (everything in one process, the embedded default).
//
// This package only wires things together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// usageError is a bad command line or configuration: exit status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func exitCode(err error, stderr io.Writer) int {
	var uerr *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "exporter: %v\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "exporter: %v\n", err)
	return 1
}

const usage = `Usage: exporter <command> [flags]

Commands:
  all        run the trigger, a worker and the scheduler in one process (default)
  trigger    serve the HTTP API
  worker     render exports from the queue
  scheduler  run periodic maintenance
  token      print a signed API token (JWT): token -sub NAME [-role ROLE] [-ttl 24h]
  export     export an area from a running exporter, follow it and download the
             verified package: export -layer ID -bbox MINX,MINY,MAXX,MAXY -max-zoom Z
  version    print the version

Run "exporter <command> -h" for the flags of a command ("exporter all -h"
for the service's settings). Every flag can also be set by an EXPORTER_*
environment variable.
`

// run is main without the process: it returns instead of exiting.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelpFlag(args[0]) {
		// exporter -h: the commands, not the flags of the default one.
		fmt.Fprint(stdout, usage)
		return flag.ErrHelp
	}
	cmd := "all"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "exporter", Version())
		return nil
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "token":
		return runToken(args, getenv, stdout, stderr)
	case "export":
		return runExport(ctx, args, getenv, stdout, stderr, isTerminal(stderr))
	case "all", "trigger", "worker", "scheduler":
	default:
		fmt.Fprint(stderr, usage)
		return &usageError{fmt.Errorf("unknown command %q", cmd)}
	}
	cfg, rest, err := loadConfig("exporter "+cmd, args, getenv, stderr)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return &usageError{fmt.Errorf("unexpected arguments %q", rest)}
	}
	return serve(ctx, role(cmd), cfg, stdout, stderr)
}
