package settings

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A small JSON scanner that keeps where every key and value starts, so
// that an error in a settings file points at the line and column of the
// thing that is wrong (encoding/json reports offsets only for some errors,
// and loses map keys and indexes from field paths).

// jnode is a parsed JSON value with its start offset.
type jnode struct {
	kind  byte // '{' object, '[' array, '"' string, '0' number, 'b' boolean, 'n' null
	off   int
	keys  []jkey   // objects, in order
	elems []*jnode // arrays
	str   string   // strings (decoded), numbers (as written)
}

type jkey struct {
	name string
	off  int
	val  *jnode
}

// posError is a syntax or schema error at a byte offset.
type posError struct {
	off   int
	field string
	msg   string
}

func (e *posError) Error() string { return e.msg }

type scanner struct {
	data []byte
	i    int
}

func (s *scanner) fail(format string, args ...any) error {
	return &posError{off: s.i, msg: fmt.Sprintf(format, args...)}
}

func (s *scanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// maxDepth bounds nesting, so hostile input cannot exhaust the stack.
const maxDepth = 64

// scanJSON parses one JSON document; only whitespace may follow it.
func scanJSON(data []byte) (*jnode, error) {
	s := &scanner{data: data}
	s.space()
	if s.i == len(data) {
		// No position: there is nothing to point at.
		return nil, &posError{off: -1, msg: "empty file: expected a JSON settings object"}
	}
	n, err := s.value(0)
	if err != nil {
		return nil, err
	}
	s.space()
	if s.i < len(data) {
		return nil, s.fail("unexpected data after the settings object")
	}
	return n, nil
}

func (s *scanner) value(depth int) (*jnode, error) {
	if depth > maxDepth {
		return nil, s.fail("invalid JSON: nested more than %d levels", maxDepth)
	}
	if s.i >= len(s.data) {
		return nil, s.fail("invalid JSON: unexpected end of file")
	}
	n := &jnode{off: s.i}
	switch c := s.data[s.i]; {
	case c == '{':
		n.kind = '{'
		s.i++
		s.space()
		if s.i < len(s.data) && s.data[s.i] == '}' {
			s.i++
			return n, nil
		}
		for {
			s.space()
			if s.i >= len(s.data) || s.data[s.i] != '"' {
				return nil, s.expected("a quoted key")
			}
			koff := s.i
			key, err := s.string()
			if err != nil {
				return nil, err
			}
			s.space()
			if s.i >= len(s.data) || s.data[s.i] != ':' {
				return nil, s.expected("':' after the key")
			}
			s.i++
			s.space()
			v, err := s.value(depth + 1)
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, jkey{name: key, off: koff, val: v})
			s.space()
			if s.i < len(s.data) && s.data[s.i] == ',' {
				s.i++
				continue
			}
			if s.i < len(s.data) && s.data[s.i] == '}' {
				s.i++
				return n, nil
			}
			return nil, s.expected("',' or '}'")
		}
	case c == '[':
		n.kind = '['
		s.i++
		s.space()
		if s.i < len(s.data) && s.data[s.i] == ']' {
			s.i++
			return n, nil
		}
		for {
			s.space()
			v, err := s.value(depth + 1)
			if err != nil {
				return nil, err
			}
			n.elems = append(n.elems, v)
			s.space()
			if s.i < len(s.data) && s.data[s.i] == ',' {
				s.i++
				continue
			}
			if s.i < len(s.data) && s.data[s.i] == ']' {
				s.i++
				return n, nil
			}
			return nil, s.expected("',' or ']'")
		}
	case c == '"':
		n.kind = '"'
		str, err := s.string()
		n.str = str
		return n, err
	case c == '-' || c >= '0' && c <= '9':
		n.kind = '0'
		start := s.i
		for s.i < len(s.data) && strings.IndexByte("+-0123456789.eE", s.data[s.i]) >= 0 {
			s.i++
		}
		n.str = string(s.data[start:s.i])
		if _, err := strconv.ParseFloat(n.str, 64); err != nil {
			s.i = start
			return nil, s.fail("invalid JSON: %q is not a number", n.str)
		}
		return n, nil
	default:
		for _, lit := range []struct {
			word string
			kind byte
		}{{"true", 'b'}, {"false", 'b'}, {"null", 'n'}} {
			if bytes.HasPrefix(s.data[s.i:], []byte(lit.word)) {
				n.kind = lit.kind
				n.str = lit.word
				s.i += len(lit.word)
				return n, nil
			}
		}
		return nil, s.expected("a value")
	}
}

func (s *scanner) expected(what string) error {
	if s.i >= len(s.data) {
		return s.fail("invalid JSON: unexpected end of file, expected %s", what)
	}
	r, _ := utf8.DecodeRune(s.data[s.i:])
	return s.fail("invalid JSON: unexpected %q, expected %s", r, what)
}

// string reads a quoted string starting at s.i and decodes its escapes
// with strconv (JSON escapes are a subset of Go's, \/ aside).
func (s *scanner) string() (string, error) {
	start := s.i
	s.i++
	for s.i < len(s.data) {
		switch c := s.data[s.i]; {
		case c == '\\':
			s.i += 2
		case c == '"':
			s.i++
			raw := string(s.data[start:s.i])
			v, err := strconv.Unquote(strings.ReplaceAll(raw, `\/`, `/`))
			if err != nil {
				s.i = start
				return "", s.fail("invalid JSON: bad string %s", clipText(raw))
			}
			return v, nil
		case c < 0x20:
			return "", s.fail("invalid JSON: control character in a string")
		default:
			s.i++
		}
	}
	s.i = start
	return "", s.fail("invalid JSON: unterminated string")
}

func clipText(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// checkSchema compares a parsed document with the Go type it decodes
// into (by json tags): unknown keys, duplicate keys and wrong kinds are
// errors at their own position.
func checkSchema(n *jnode, t reflect.Type, path string) error {
	if n.kind == 'n' {
		return nil // null leaves the zero value, like encoding/json
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	wrong := func(want string) error {
		return &posError{off: n.off, field: path, msg: fmt.Sprintf("expected %s, found %s", want, kindName(n.kind))}
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.kind != '{' {
			return wrong("an object")
		}
		fields := jsonFields(t)
		seen := map[string]bool{}
		for _, k := range n.keys {
			p := joinPath(path, k.name)
			ft, ok := fields[k.name]
			if !ok {
				names := make([]string, 0, len(fields))
				for name := range fields {
					names = append(names, name)
				}
				sortStrings(names)
				return &posError{off: k.off, field: p, msg: fmt.Sprintf("unknown field %q; valid: %s", k.name, strings.Join(names, ", "))}
			}
			if seen[k.name] {
				return &posError{off: k.off, field: p, msg: fmt.Sprintf("field %q given twice", k.name)}
			}
			seen[k.name] = true
			if err := checkSchema(k.val, ft, p); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.kind != '{' {
			return wrong("an object")
		}
		seen := map[string]bool{}
		for _, k := range n.keys {
			p := joinPath(path, k.name)
			if seen[k.name] {
				return &posError{off: k.off, field: p, msg: fmt.Sprintf("%q given twice", k.name)}
			}
			seen[k.name] = true
			if err := checkSchema(k.val, t.Elem(), p); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.kind != '[' {
			return wrong("a list")
		}
		for i, e := range n.elems {
			if err := checkSchema(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.String:
		if n.kind != '"' {
			return wrong("a string")
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n.kind != '0' {
			return wrong("a whole number")
		}
		if _, err := strconv.ParseInt(n.str, 10, 32); err != nil {
			return &posError{off: n.off, field: path, msg: fmt.Sprintf("%s is not a whole number in range", n.str)}
		}
	case reflect.Bool:
		if n.kind != 'b' {
			return wrong("true or false")
		}
	}
	return nil
}

func kindName(k byte) string {
	switch k {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 'b':
		return "a boolean"
	}
	return "null"
}

func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// locate finds the offset for a field path such as "services.imap.port"
// or "accounts[1]": the key when it exists, else the element, else the
// deepest object that exists on the way (the one that lacks the key);
// -1 when not even that.
func locate(root *jnode, path string) int {
	if root == nil || path == "" {
		return -1
	}
	n, best := root, -1
	for _, seg := range splitPath(path) {
		if seg.index >= 0 {
			if n.kind != '[' || seg.index >= len(n.elems) {
				return best
			}
			n = n.elems[seg.index]
			best = n.off
			continue
		}
		if n.kind != '{' {
			return best
		}
		best = n.off
		found := false
		for _, k := range n.keys {
			if k.name == seg.key {
				n, best, found = k.val, k.off, true
				break
			}
		}
		if !found {
			return best
		}
	}
	return best
}

type pathSeg struct {
	key   string
	index int // -1 for a key
}

// splitPath splits "a.b[2].c" into segments. A key may itself contain
// brackets or dots only when the path was built from such a key; service
// names never do, and a stray bracket is kept as part of the key.
func splitPath(path string) []pathSeg {
	var out []pathSeg
	for _, part := range strings.Split(path, ".") {
		key := part
		var idx []int
		for strings.HasSuffix(key, "]") {
			open := strings.LastIndexByte(key, '[')
			if open < 0 {
				break
			}
			i, err := strconv.Atoi(key[open+1 : len(key)-1])
			if err != nil {
				break
			}
			idx = append([]int{i}, idx...)
			key = key[:open]
		}
		if key != "" {
			out = append(out, pathSeg{key: key, index: -1})
		}
		for _, i := range idx {
			out = append(out, pathSeg{index: i})
		}
	}
	return out
}
