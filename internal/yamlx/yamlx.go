// Package yamlx decodes YAML strictly with errors a person can act on: the
// file, the line, the field path, and for an unknown key or value the valid
// choices. It is used for scenario files, where a typo must be an error,
// never a silent default.
package yamlx

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Error is a problem at a place in a YAML file.
type Error struct {
	File  string
	Line  int // 1-based; 0 when unknown
	Field string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errorf makes an Error at node.
func Errorf(file string, node *yaml.Node, field, format string, args ...any) *Error {
	line := 0
	if node != nil {
		line = node.Line
	}
	return &Error{File: file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Parse reads a YAML document into its root node.
func Parse(file string, data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxError(file, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &Error{File: file, Msg: "empty file"}
	}
	return doc.Content[0], nil
}

// syntaxError turns yaml.v3's "yaml: line N: msg" into an Error.
func syntaxError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			fmt.Sscanf(n, "%d", &line)
			msg = after
		}
	}
	return &Error{File: file, Line: line, Msg: "invalid YAML: " + msg}
}

var durationType = reflect.TypeOf(time.Duration(0))

// Decode decodes node into out (a pointer) strictly: every mapping key
// must be a field of the target struct (by yaml tag), and types must
// match. field is the path of node, for messages.
func Decode(file string, node *yaml.Node, field string, out any) error {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return errors.New("yamlx: Decode needs a non-nil pointer")
	}
	return decode(file, node, field, v.Elem(), 0)
}

// maxDepth bounds nesting (aliases included), so a hostile document
// cannot exhaust the stack.
const maxDepth = 100

func decode(file string, node *yaml.Node, field string, v reflect.Value, depth int) error {
	if depth > maxDepth {
		return Errorf(file, node, field, "nested more than %d levels", maxDepth)
	}
	depth++
	if node.Kind == yaml.AliasNode {
		node = node.Alias
	}
	if v.Type() == durationType {
		if node.Kind != yaml.ScalarNode {
			return Errorf(file, node, field, "expected a duration such as 30s or 1m30s")
		}
		d, err := time.ParseDuration(node.Value)
		if err != nil {
			return Errorf(file, node, field, "%q is not a duration (examples: 500ms, 30s, 2m)", node.Value)
		}
		v.SetInt(int64(d))
		return nil
	}
	if v.Type() == reflect.TypeOf(yaml.Node{}) {
		v.Set(reflect.ValueOf(*node))
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return decode(file, node, field, v.Elem(), depth)
	case reflect.Struct:
		if node.Kind != yaml.MappingNode {
			return Errorf(file, node, field, "expected a mapping of %s", strings.Join(fieldNames(v.Type()), ", "))
		}
		fields := structFields(v.Type())
		seen := map[string]bool{}
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, val := node.Content[i], node.Content[i+1]
			path := join(field, k.Value)
			idx, ok := fields[k.Value]
			if !ok {
				return Errorf(file, k, path, "unknown field %q; valid: %s", k.Value, strings.Join(fieldNames(v.Type()), ", "))
			}
			if seen[k.Value] {
				return Errorf(file, k, path, "field given twice")
			}
			seen[k.Value] = true
			if err := decode(file, val, path, v.FieldByIndex(idx), depth); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
			return nil
		}
		if node.Kind != yaml.SequenceNode {
			// A single value where a list is expected is a list of one.
			s := reflect.MakeSlice(v.Type(), 1, 1)
			if err := decode(file, node, field, s.Index(0), depth); err != nil {
				return err
			}
			v.Set(s)
			return nil
		}
		s := reflect.MakeSlice(v.Type(), len(node.Content), len(node.Content))
		for i, item := range node.Content {
			if err := decode(file, item, fmt.Sprintf("%s[%d]", field, i), s.Index(i), depth); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Map:
		if node.Kind != yaml.MappingNode {
			return Errorf(file, node, field, "expected a mapping")
		}
		m := reflect.MakeMap(v.Type())
		seen := map[string]bool{}
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, val := node.Content[i], node.Content[i+1]
			if seen[k.Value] {
				// YAML 1.2 §3.2.1.1: keys are unique.
				return Errorf(file, k, join(field, k.Value), "key given twice")
			}
			seen[k.Value] = true
			kv := reflect.New(v.Type().Key()).Elem()
			if err := decode(file, k, field, kv, depth); err != nil {
				return err
			}
			vv := reflect.New(v.Type().Elem()).Elem()
			if err := decode(file, val, join(field, k.Value), vv, depth); err != nil {
				return err
			}
			m.SetMapIndex(kv, vv)
		}
		v.Set(m)
		return nil
	case reflect.Interface:
		if v.Type() == reflect.TypeOf((*any)(nil)).Elem() {
			var x any
			if err := node.Decode(&x); err != nil {
				return Errorf(file, node, field, "%v", err)
			}
			if x != nil {
				v.Set(reflect.ValueOf(x))
			}
			return nil
		}
	}
	if node.Kind != yaml.ScalarNode {
		return Errorf(file, node, field, "expected a single %s value", kindName(v.Kind()))
	}
	if err := node.Decode(v.Addr().Interface()); err != nil {
		return Errorf(file, node, field, "%q is not a valid %s", node.Value, kindName(v.Kind()))
	}
	return nil
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.Bool:
		return "boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	}
	return k.String()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// structFields maps yaml keys to field index paths; fields tagged
// ",inline" contribute their own fields.
func structFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		_, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" && f.Type.Kind() == reflect.Struct {
			for name, idx := range structFields(f.Type) {
				out[name] = append([]int{i}, idx...)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		name := yamlName(f)
		if name == "-" {
			continue
		}
		out[name] = []int{i}
	}
	return out
}

func yamlName(f reflect.StructField) string {
	tag := f.Tag.Get("yaml")
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

// FieldNames lists the yaml keys of a struct type, sorted.
func FieldNames(v any) []string { return fieldNames(reflect.TypeOf(v)) }

func fieldNames(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	for name := range structFields(t) {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
