package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var durationType = reflect.TypeFor[time.Duration]()

// decodable refuses what the YAML decoder refuses in a document: aliases
// that expand without bound ("billion laughs") and a key defined twice in a
// mapping. check follows aliases and reads every key, so it runs only on a
// document this accepted; the decoder stops an expansion early.
func decodable(doc *yaml.Node) error {
	var v any
	return doc.Decode(&v)
}

// check walks a YAML document against the type it decodes into, before it is
// decoded: every unknown setting and every value of the wrong kind becomes a
// Problem named by its path (the decoder would stop at Go type names), and
// every setting's line is remembered in src.
func check(file string, n *yaml.Node, t reflect.Type, path string, src sources, out *Problems) {
	at := func(n *yaml.Node) string { return fmt.Sprintf("%s:%d", file, n.Line) }
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value: the default
	}
	bad := func(want string) {
		got := "a " + kindOf(n)
		if n.Kind == yaml.ScalarNode {
			got = strconv.Quote(n.Value)
		}
		*out = append(*out, Problem{Path: path, Message: fmt.Sprintf("%s is not %s", got, want), Source: at(n)})
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			bad("a duration such as 30s, 10m or 24h")
		} else if _, err := time.ParseDuration(n.Value); err != nil {
			bad("a duration such as 30s, 10m or 24h")
		}
		return
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			bad("a mapping of settings")
			return
		}
		fields, inline := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			src[p] = at(k)
			f, ok := fields[k.Value]
			switch {
			case ok:
				check(file, v, f, p, src, out)
			case !inline:
				*out = append(*out, Problem{Path: p, Message: UnknownSetting(k.Value, keys(fields)), Source: at(k)})
			}
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			bad("a mapping")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			src[p] = at(k)
			check(file, v, t.Elem(), p, src, out)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			bad("a list")
			return
		}
		for i, v := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			src[p] = at(v)
			check(file, v, t.Elem(), p, src, out)
		}
	case t.Kind() == reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			bad("true or false")
		}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			bad("a whole number")
		}
	case t.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			bad("a string")
		}
	}
}

// yamlFields are the settings a struct decodes, by YAML name; inline is true
// when it also keeps settings it does not name (a provider's own settings).
func yamlFields(t reflect.Type) (fields map[string]reflect.Type, inline bool) {
	fields = map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-":
		case strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Map:
			inline = true
		case strings.Contains(opts, "inline"):
			sub, subInline := yamlFields(f.Type)
			for k, v := range sub {
				fields[k] = v
			}
			inline = inline || subInline
		case name == "":
			fields[strings.ToLower(f.Name)] = f.Type
		default:
			fields[name] = f.Type
		}
	}
	return fields, inline
}

func keys(m map[string]reflect.Type) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func kindOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}
