package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/config"
)

// A command is one thing customerd does. Adding one is adding it to commands.
type command struct {
	name    string // the words that select it: "events list"
	args    string // its arguments for the usage line, "[ID…]"; none: it takes none
	summary string // one line for `customerd --help`
	help    string // more for `customerd COMMAND --help`
	// setup declares the command's own flags and returns what runs it.
	setup func(fs *flag.FlagSet) func(ctx context.Context, e *env, args []string) error
}

// commands, in the order `customerd --help` lists them.
var commands = []command{
	{name: "serve", summary: "serve the API and /docs on addr, /metrics on metricsAddr, the admin API on adminAddr (the default command)", help: serveHelp, setup: serveCommand},
	{name: "migrate", summary: "apply the database migrations and exit", help: migrateHelp, setup: migrateCommand},
	{name: "events list", summary: "list customer events, one JSON object a line", help: eventsListHelp, setup: eventsListCommand},
	{name: "events replay", args: "[ID…]", summary: "deliver dead events again: these ones, or every dead one", help: eventsReplayHelp, setup: eventsReplayCommand},
	{name: "rotate-key", args: "TENANT", summary: "add a new signing key to a tenant", help: rotateKeyHelp, setup: rotateKeyCommand},
	{name: "tenants apply", summary: "create or update tenants from a YAML file, idempotently, printing what differs", help: tenantsApplyHelp, setup: tenantsApplyCommand},
	{name: "tenants check", summary: "judge every tenant of the database by this version's rules, printing those that no longer load", help: tenantsCheckHelp, setup: tenantsCheckCommand},
	{name: "admin-key create", summary: "make an admin API key of a scope and print it, once", help: adminKeyCreateHelp, setup: adminKeyCreateCommand},
	{name: "admin-key list", summary: "list the admin API keys (never a key itself)", help: adminKeyListHelp, setup: adminKeyListCommand},
	{name: "admin-key revoke", args: "ID", summary: "revoke an admin API key at once", help: adminKeyRevokeHelp, setup: adminKeyRevokeCommand},
	{name: "config check", summary: "check the configuration, touching neither the database nor the network", help: configCheckHelp, setup: configCheckCommand},
	{name: "version", summary: "print the version, the commit and the Go version", setup: versionCommand},
	{name: "help", args: "[COMMAND]", summary: "print this help, or a command's"},
}

// env is what every command runs with.
type env struct {
	configPath     string
	getenv         func(string) string
	stdout, stderr io.Writer
}

// config loads and checks the whole configuration, provider settings included.
func (e *env) config() (*config.Config, error) {
	return config.Load(e.configPath, e.getenv, app.CheckProviders)
}

// globals declares the flags every command takes, before or after its name.
func (e *env) globals(fs *flag.FlagSet) {
	fs.StringVar(&e.configPath, "config", e.configPath, "the YAML configuration `FILE` (CUSTOMERD_CONFIG); none: the demo set-up")
}

// usageError is a command line customerd cannot run: exit status 2.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// plural is the "s" of n things.
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// errReported: the command has said what went wrong; exit 1 without more.
var errReported = errors.New("reported")

// run runs the command line args and returns the exit status.
func run(args []string, e *env) int {
	e.configPath = e.getenv("CUSTOMERD_CONFIG")
	top := newFlagSet("customerd")
	e.globals(top)
	showVersion := top.Bool("version", false, "print the version and exit")
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(e.stdout)
			return 0
		}
		fmt.Fprintf(e.stderr, "customerd: %s\nRun 'customerd --help' for usage.\n", flagProblem(top, err))
		return 2
	}
	words := top.Args()
	if *showVersion {
		words = []string{"version"}
	}
	if len(words) > 0 && words[0] == "help" {
		return help(words[1:], e)
	}
	cmd, rest, err := lookup(words)
	if err != nil {
		fmt.Fprintf(e.stderr, "customerd: %v\nRun 'customerd --help' for usage.\n", err)
		return 2
	}
	fs := newFlagSet("customerd " + cmd.name)
	runCmd := cmd.setup(fs)
	e.globals(fs)
	positional, err := parseInterleaved(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(e.stdout, cmd, fs)
		return 0
	}
	if err == nil && cmd.args == "" && len(positional) > 0 {
		err = usagef("takes no arguments, got %q", positional)
	}
	interrupted := false
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		// The first signal asks the command to stop; a second one ends the
		// process at once, as it would without customerd's handling.
		go func() { <-ctx.Done(); stop() }()
		err = runCmd(ctx, e, positional)
		interrupted = ctx.Err() != nil
	}
	var usage usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errReported):
		return 1
	case errors.As(err, &usage):
		fmt.Fprintf(e.stderr, "customerd %s: %v\nRun 'customerd %s --help' for usage.\n", cmd.name, err, cmd.name)
		return 2
	case interrupted:
		fmt.Fprintf(e.stderr, "customerd %s: interrupted: %v\n", cmd.name, err)
		return 1
	}
	fmt.Fprintf(e.stderr, "customerd %s: %v\n", cmd.name, err)
	return 1
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run says what went wrong, once
	fs.Usage = func() {}
	return fs
}

// parseInterleaved parses flags wherever they are among the arguments
// (`rotate-key acme --config c.yaml`); after "--" everything is an argument.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{flagProblem(fs, err)}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
}

// flagProblem is the flag package's message about err as a person typed
// the flag: "unknown flag --confg, did you mean --config?", not
// "flag provided but not defined: -confg".
func flagProblem(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if near := config.Closest(name, names); near != "" {
			return fmt.Sprintf("unknown flag %s, did you mean %s?", dashed(name), dashed(near))
		}
		return "unknown flag " + dashed(name)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return dashed(name) + " needs a value"
	}
	return msg
}

// dashed is a flag as the help writes it: -f, --config.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// lookup finds the command the first words name; no words is serve.
func lookup(words []string) (*command, []string, error) {
	if len(words) == 0 {
		return &commands[0], nil, nil
	}
	for n := min(2, len(words)); n >= 1; n-- {
		name := strings.Join(words[:n], " ")
		for i := range commands {
			if commands[i].name == name && name != "help" {
				return &commands[i], words[n:], nil
			}
		}
	}
	if subs := subcommands(words[0]); len(subs) > 0 {
		if len(words) > 1 && !strings.HasPrefix(words[1], "-") {
			if near := config.Closest(words[1], subs); near != "" {
				return nil, nil, usagef("unknown command %q, did you mean %s %s?", words[0]+" "+words[1], words[0], near)
			}
			return nil, nil, usagef("unknown command %q, have %s", words[0]+" "+words[1], strings.Join(subs, " or "))
		}
		return nil, nil, usagef("%s needs a command: %s", words[0], strings.Join(subs, " or "))
	}
	var names []string
	for _, c := range commands {
		names = append(names, strings.Fields(c.name)[0])
	}
	names = slices.Compact(names)
	if near := config.Closest(words[0], names); near != "" {
		return nil, nil, usagef("unknown command %q, did you mean %s?", words[0], near)
	}
	return nil, nil, usagef("unknown command %q, have [%s]", words[0], strings.Join(names, " "))
}

// subcommands are the second words of the commands whose first word is group.
func subcommands(group string) []string {
	var subs []string
	for _, c := range commands {
		if first, second, ok := strings.Cut(c.name, " "); ok && first == group {
			subs = append(subs, second)
		}
	}
	return subs
}

// help is `customerd help [COMMAND]`.
func help(words []string, e *env) int {
	if len(words) == 0 || slices.Contains([]string{"-h", "-help", "--help"}, words[0]) {
		printHelp(e.stdout)
		return 0
	}
	cmd, rest, err := lookup(words)
	if err != nil || len(rest) > 0 {
		if err == nil {
			err = usagef("unknown command %q", strings.Join(words, " "))
		}
		fmt.Fprintf(e.stderr, "customerd help: %v\n", err)
		return 2
	}
	fs := newFlagSet("customerd " + cmd.name)
	cmd.setup(fs)
	e.globals(fs)
	printCommandHelp(e.stdout, cmd, fs)
	return 0
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, `customerd is a multi-tenant customer identity service: the API of openapi.yaml.

Usage:
  customerd [--config FILE] [COMMAND] [flags] [arguments]

Commands:
`)
	width := 0
	for _, c := range commands {
		width = max(width, len(usageLine(c)))
	}
	for _, c := range commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, usageLine(c), c.summary)
	}
	fmt.Fprint(w, `
Flags of every command, before or after its name:
  --config FILE  the YAML configuration (CUSTOMERD_CONFIG); none: the demo set-up
  -h, --help     print help: 'customerd COMMAND --help' for a command's

Environment variables override the file: CUSTOMERD_ADDR, CUSTOMERD_METRICS_ADDR,
CUSTOMERD_ADMIN_ADDR, CUSTOMERD_DATABASE_URL, CUSTOMERD_SECRET, CUSTOMERD_PUBLIC_URL,
CUSTOMERD_LOG_LEVEL, CUSTOMERD_LOG_FORMAT, CUSTOMERD_TRUSTED_PROXIES.
`)
}

func usageLine(c command) string {
	if c.args == "" {
		return c.name
	}
	return c.name + " " + c.args
}

func printCommandHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: customerd %s [flags]\n\n%s.\n", usageLine(*c), upperFirst(c.summary))
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	fmt.Fprintln(w, "\nFlags:")
	type line struct{ left, usage string }
	var lines []line
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		left := dashed(f.Name) // as the README writes it: tenants apply -f FILE
		if name != "" {
			left += " " + name
		}
		lines = append(lines, line{left, usage})
		width = max(width, len(left))
	})
	for _, l := range lines {
		fmt.Fprintf(w, "  %-*s  %s\n", width, l.left, l.usage)
	}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// logger is the service's log as configured: level, format, and durations
// as "30s" rather than nanoseconds.
func logger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().String())
		}
		return a
	}}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func main() {
	os.Exit(run(os.Args[1:], &env{getenv: os.Getenv, stdout: os.Stdout, stderr: os.Stderr}))
}
