// Command mgrflags is the reference side of the webhook's differential test of sysbox-mgr's
// command line.
//
// sysbox-mgr (github.com/nestybox/sysbox-mgr, main.go) builds a urfave/cli v1 App, declares its
// flags on it and calls app.Run(os.Args); every error that comes back ends in logrus.Fatal. This
// program declares the same flags (same names, spellings and types, same order) on an App of the
// same urfave/cli version (v1.22.14, as sysbox-mgr's go.mod pins), and runs it once per case with
// an Action that records what the daemon would start with instead of starting it. The parts of
// sysbox-mgr's own code that can refuse a command line are restated here: app.Before refuses a
// log level outside debug, info, warning, error and fatal; the Action refuses cpu-profiling
// together with memory-profiling. (Before also opens the --log file; whether that works depends
// on the node, so it is left out on both sides.) app.Version is set, as in sysbox-mgr's release
// builds, so the version flag exists.
//
// Input on stdin:
//
//	{"cases": [["--relaxed-read-only", "--log-level", "debug"], ...]}
//
// (the arguments after argv[0]). Output on stdout, one result per case, in order:
//
//	{"results": [{"starts": true, "relaxed": true, "mentioned": true, "args": []},
//	             {"starts": false, "error": "flag provided but not defined: -x"}, ...]}
//
// starts is true when the App reaches the Action and the Action accepts the flags; relaxed is
// ctx.GlobalBool("relaxed-read-only") there, mentioned is ctx.IsSet("relaxed-read-only"), and
// args is ctx.Args(). Input that cannot be decoded is a bug in the calling test: the program then
// writes the reason to stderr and exits with status 2.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli"
)

type request struct {
	Cases [][]string `json:"cases"`
}

type result struct {
	Starts    bool     `json:"starts"`
	Relaxed   bool     `json:"relaxed"`
	Mentioned bool     `json:"mentioned"`
	Args      []string `json:"args"`
	Error     string   `json:"error,omitempty"`
}

// sysboxMgrFlags mirrors the app.Flags list of sysbox-mgr's main.go: the names, the alias
// spelling of "log, l", and the kind of each flag (StringFlag, BoolFlag, BoolTFlag), in order.
func sysboxMgrFlags() []cli.Flag {
	return []cli.Flag{
		cli.StringFlag{Name: "log, l", Value: ""},
		cli.StringFlag{Name: "log-level", Value: "info"},
		cli.StringFlag{Name: "log-format", Value: "text"},
		cli.BoolTFlag{Name: "alias-dns"},
		cli.BoolFlag{Name: "cpu-profiling", Hidden: true},
		cli.BoolFlag{Name: "memory-profiling", Hidden: true},
		cli.StringFlag{Name: "data-root", Value: "/var/lib/sysbox"},
		cli.BoolFlag{Name: "disable-shiftfs"},
		cli.BoolFlag{Name: "disable-shiftfs-on-fuse"},
		cli.BoolFlag{Name: "disable-shiftfs-precheck"},
		cli.BoolFlag{Name: "disable-idmapped-mount"},
		cli.BoolFlag{Name: "disable-rootfs-cloning"},
		cli.BoolFlag{Name: "disable-ovfs-on-idmapped-mount"},
		cli.BoolFlag{Name: "disable-inner-image-preload"},
		cli.BoolFlag{Name: "ignore-sysfs-chown"},
		cli.BoolFlag{Name: "allow-trusted-xattr"},
		cli.BoolFlag{Name: "honor-caps"},
		cli.BoolTFlag{Name: "syscont-mode"},
		cli.BoolFlag{Name: "relaxed-read-only"},
		cli.BoolFlag{Name: "fsuid-map-fail-on-error"},
	}
}

var errProfiling = errors.New("unsupported parameter combination: cpu and memory profiling")

// judge runs one command line through a fresh App and reports what sysbox-mgr would do.
func judge(args []string) result {
	var res result
	started := false

	app := cli.NewApp()
	app.Name = "sysbox-mgr"
	app.Version = "0.6.7"
	app.Writer = io.Discard
	app.ErrWriter = io.Discard
	app.Flags = sysboxMgrFlags()
	app.Before = func(ctx *cli.Context) error {
		switch level := ctx.GlobalString("log-level"); level {
		case "", "debug", "info", "warning", "error", "fatal":
			return nil
		default:
			return fmt.Errorf("'%v' log-level option not recognized", level)
		}
	}
	app.Action = func(ctx *cli.Context) error {
		if ctx.Bool("cpu-profiling") && ctx.Bool("memory-profiling") {
			return errProfiling
		}
		started = true
		res.Relaxed = ctx.GlobalBool("relaxed-read-only")
		res.Mentioned = ctx.IsSet("relaxed-read-only")
		res.Args = append([]string{}, ctx.Args()...)
		return nil
	}

	err := app.Run(append([]string{"/usr/bin/sysbox-mgr"}, args...))
	res.Starts = started && err == nil
	if err != nil {
		res.Error = err.Error()
	} else if !started {
		res.Error = "exited without starting (help or version)"
	}
	if res.Args == nil {
		res.Args = []string{}
	}
	return res
}

func run(in io.Reader, out io.Writer) error {
	var req request
	dec := json.NewDecoder(bufio.NewReader(in))
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("decoding the request: %w", err)
	}
	results := make([]result, len(req.Cases))
	for i, c := range req.Cases {
		results[i] = judge(c)
	}
	w := bufio.NewWriter(out)
	if err := json.NewEncoder(w).Encode(map[string][]result{"results": results}); err != nil {
		return err
	}
	return w.Flush()
}

func main() {
	// urfave/cli calls OsExiter for errors that carry an exit code (the help command's
	// "No help topic"); here they are results, not exits.
	cli.OsExiter = func(int) {}
	cli.ErrWriter = io.Discard
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mgrflags:", err)
		os.Exit(2)
	}
}
