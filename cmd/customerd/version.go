package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

func versionCommand(*flag.FlagSet) func(context.Context, *env, []string) error {
	return func(_ context.Context, e *env, _ []string) error {
		info, ok := debug.ReadBuildInfo()
		if !ok {
			return fmt.Errorf("this binary carries no build information")
		}
		vcs := map[string]string{}
		for _, s := range info.Settings {
			vcs[s.Key] = s.Value
		}
		// Go stamps a build in a git clone, not in a git worktree (whose .git is a file).
		commit := "unknown (built without VCS information: make build in a git clone stamps it)"
		if rev := vcs["vcs.revision"]; rev != "" {
			commit = rev
			if t := vcs["vcs.time"]; t != "" {
				commit += " " + t
			}
			if vcs["vcs.modified"] == "true" {
				commit += " (with uncommitted changes)"
			}
		}
		_, err := fmt.Fprintf(e.stdout, "customerd %s\n  module  %s\n  commit  %s\n  go      %s %s/%s\n",
			info.Main.Version, info.Main.Path, commit, info.GoVersion, runtime.GOOS, runtime.GOARCH)
		return err
	}
}
