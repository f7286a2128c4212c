package providers

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// UnknownSettingError is a setting the provider's type does not have.
type UnknownSettingError struct {
	Name  string
	Known []string // the type's settings
}

func (e *UnknownSettingError) Error() string {
	return fmt.Sprintf("%s: unknown setting, have [%s]", e.Name, strings.Join(e.Known, " "))
}

// settingsError says what is wrong with a provider's settings in the words of
// the configuration file, not of encoding/json and Go's types.
func settingsError(err error, into any) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return fmt.Errorf("%s: %s is not %s", typeErr.Field, article(typeErr.Value), kind(typeErr.Type))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return &UnknownSettingError{Name: strings.Trim(name, `"`), Known: jsonNames(reflect.TypeOf(into))}
	}
	return fmt.Errorf("settings: %w", err)
}

func jsonNames(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if t.Field(i).IsExported() && name != "-" {
			names = append(names, cmp.Or(name, t.Field(i).Name))
		}
	}
	slices.Sort(names)
	return names
}

func article(v string) string {
	switch v {
	case "array":
		return "a list"
	case "object":
		return "a mapping"
	case "bool":
		return "true or false"
	}
	return "a " + v
}

func kind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	}
	return "a number"
}
