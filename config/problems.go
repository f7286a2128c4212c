package config

import (
	"fmt"
	"slices"
	"strings"
)

// Problem is one bad setting: where it is in the configuration, what is wrong
// with it, and where its value came from.
type Problem struct {
	// Path names the setting as the file nests it: tenants.acme.providers.google.clientIds.
	Path string
	// Message says what is wrong, with the bad value when it is not a secret.
	Message string
	// Source is where the value came from: "FILE:LINE", an environment
	// variable's name, or "" for a default.
	Source string
}

func (p Problem) String() string {
	if isEnv(p.Source) {
		// The reader set the variable, not the setting: name what they typed.
		return p.Source + ": " + p.Message
	}
	s := p.Message
	if p.Path != "" {
		s = p.Path + ": " + s
	}
	if p.Source != "" {
		s += " (" + p.Source + ")"
	}
	return s
}

// Problems are every bad setting of a configuration; as an error, one per line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	if len(ps) == 1 {
		return "configuration: " + lines[0]
	}
	return fmt.Sprintf("configuration has %d problems:\n  %s", len(ps), strings.Join(lines, "\n  "))
}

// ProblemAt turns err, whose message starts with a setting's path relative to
// prefix ("smtp.host: required"), into a Problem with the full path.
func ProblemAt(prefix string, err error) Problem {
	msg := err.Error()
	if rel, rest, ok := strings.Cut(msg, ": "); ok && !strings.ContainsAny(rel, " \"") {
		return Problem{Path: join(prefix, rel), Message: rest}
	}
	return Problem{Path: prefix, Message: msg}
}

// UnknownSetting is the message for a setting named name where the known
// ones are allowed: a did-you-mean when one is close, else the list.
func UnknownSetting(name string, known []string) string {
	if near := Closest(name, known); near != "" {
		return fmt.Sprintf("unknown setting, did you mean %s?", near)
	}
	known = slices.Sorted(slices.Values(known))
	return fmt.Sprintf("unknown setting, have [%s]", strings.Join(known, " "))
}

// Closest is the known name a typo of name most likely meant, or "".
func Closest(name string, known []string) string {
	best, bestDist := "", 0
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return k
		}
		d := distance(strings.ToLower(name), strings.ToLower(k))
		if d <= max(1, len(k)/4) && (best == "" || d < bestDist) {
			best, bestDist = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func join(prefix, rel string) string {
	switch {
	case prefix == "":
		return rel
	case rel == "":
		return prefix
	case strings.HasPrefix(rel, "["):
		return prefix + rel
	}
	return prefix + "." + rel
}

func isEnv(source string) bool { return strings.HasPrefix(source, "CUSTOMERD_") }

// sources remembers where each setting's value came from, by path.
type sources map[string]string

// of is the source of path: its own, else the nearest enclosing setting's
// line in the file ("" for a default).
func (s sources) of(path string) string {
	if src, ok := s[path]; ok {
		return src
	}
	// A flow's errors say flows.NAME.steps[i]; the file says flows.NAME[i].
	if p := strings.Replace(path, ".steps[", "[", 1); p != path {
		return s.of(p)
	}
	for {
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			return ""
		}
		path = path[:i]
		if src, ok := s[path]; ok && !isEnv(src) {
			return src
		}
	}
}
