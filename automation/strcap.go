package automation

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/vm/runtime"
)

// MaxStringLen is the longest string an expression may build (64 KiB).
// expr's memory budget counts the elements of lists and maps, never the
// bytes of strings: doubling a string 40 times (a chain of let v = p + p,
// or reduce(1..40, #acc + #acc, "x")) or repeat("x", 1e12) asks Go for
// gigabytes at once, which ends the whole process with an unrecoverable
// "out of memory" — a reader's dry run would take the server down. Every
// operation that can make a string longer than its inputs therefore checks
// the length of its result BEFORE allocating it: + on strings, repeat,
// join, replace, toBase64, string() and toJSON. Names, topics and event
// fields are far shorter than the cap; a rule needs nothing longer.
const MaxStringLen = 64 << 10

// ErrStringTooLong: an expression tried to build a string longer than
// MaxStringLen. The evaluation fails with it (wrapped in ErrEvaluation by
// the engine), before the memory is allocated.
var ErrStringTooLong = errors.New("string longer than the 64 KiB cap")

// Names of the functions the string-cap patch calls.
const (
	addFunc    = "__add"    // + whose operands are not known to be numbers
	concatFunc = "__concat" // + of two strings (keeps the static type)
)

func tooLong(what string, n int) error {
	return fmt.Errorf("%s: %w (%d bytes)", what, ErrStringTooLong, n)
}

// capped checks that a result of n bytes is allowed.
func capped(what string, n int) error {
	if n < 0 || n > MaxStringLen {
		return tooLong(what, n)
	}
	return nil
}

// stringCapOptions are the compile options that bound the strings an
// expression builds: the growing builtins are replaced by capped versions
// (expr.Function overrides a builtin of the same name) and the + operator
// is routed through capped functions by strCapPatcher.
func stringCapOptions() []expr.Option {
	return []expr.Option{
		expr.Function(concatFunc, capConcat, new(func(string, string) string)),
		expr.Function(addFunc, capAdd),
		expr.Function("repeat", capRepeat, new(func(string, int) string)),
		expr.Function("join", capJoin, new(func(any) string), new(func(any, string) string)),
		expr.Function("replace", capReplace, new(func(string, string, string) string)),
		expr.Function("toBase64", capToBase64, new(func(string) string)),
		expr.Function("toJSON", capToJSON, new(func(any) string)),
		expr.Function("string", capString, new(func(any) string)),
		expr.Patch(strCapPatcher{}),
	}
}

// strCapPatcher rewrites a + b into __concat(a, b) when both operands are
// statically strings, and into __add(a, b) when either operand's type is
// unknown (a predicate variable, #acc, a map value...): only the run
// knows whether such a + concatenates. A + of two known non-strings
// (numbers, times, durations) stays as it is, and so does a mix the
// checker refuses (e.g. "a" + 1), so its compile error is unchanged.
type strCapPatcher struct{}

func (strCapPatcher) Visit(n *ast.Node) {
	b, ok := (*n).(*ast.BinaryNode)
	if !ok || b.Operator != "+" {
		return
	}
	ls, lu := kindOf(b.Left)
	rs, ru := kindOf(b.Right)
	var name string
	switch {
	case ls && rs:
		name = concatFunc
	case lu || ru:
		name = addFunc
	default:
		return
	}
	call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: name}, Arguments: []ast.Node{b.Left, b.Right}}
	call.SetLocation(b.Location())
	ast.Patch(n, call)
}

// kindOf says whether n is statically a string, or of unknown type.
func kindOf(n ast.Node) (isString, unknown bool) {
	t := n.Type()
	if t == nil {
		return false, true
	}
	switch t.Kind() {
	case reflect.String:
		return true, false
	case reflect.Interface:
		return false, true
	}
	return false, false
}

func capConcat(params ...any) (any, error) {
	a, _ := params[0].(string)
	b, _ := params[1].(string)
	if err := capped("+", len(a)+len(b)); err != nil {
		return nil, err
	}
	return a + b, nil
}

// capAdd is + for operands of unknown type: strings are concatenated
// within the cap, anything else is expr's own addition.
func capAdd(params ...any) (any, error) {
	if len(params) != 2 {
		return nil, fmt.Errorf("+ takes 2 operands, got %d", len(params))
	}
	a, as := params[0].(string)
	b, bs := params[1].(string)
	if as && bs {
		if err := capped("+", len(a)+len(b)); err != nil {
			return nil, err
		}
		return a + b, nil
	}
	return addOther(params[0], params[1])
}

// addOther runs expr's addition, whose type errors are panics in the VM.
func addOther(a, b any) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return runtime.Add(a, b), nil
}

func capRepeat(params ...any) (any, error) {
	s, _ := params[0].(string)
	n, ok := params[1].(int)
	if !ok {
		return nil, fmt.Errorf("repeat: count must be an int, got %T", params[1])
	}
	if n < 0 {
		return nil, fmt.Errorf("repeat: negative count %d", n)
	}
	if len(s) > 0 && n > MaxStringLen/len(s) {
		return nil, tooLong("repeat", MaxStringLen+1)
	}
	return strings.Repeat(s, n), nil
}

func capJoin(params ...any) (any, error) {
	sep := ""
	if len(params) == 2 {
		sep, _ = params[1].(string)
	}
	v := reflect.ValueOf(params[0])
	if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
		return nil, fmt.Errorf("join: want a list, got %T", params[0])
	}
	parts := make([]string, v.Len())
	total := 0
	for i := range parts {
		e := v.Index(i)
		for e.Kind() == reflect.Interface && !e.IsNil() {
			e = e.Elem()
		}
		if e.Kind() != reflect.String {
			return nil, fmt.Errorf("join: element %d is not a string", i)
		}
		parts[i] = e.String()
		if i > 0 {
			total += len(sep)
		}
		total += len(parts[i])
		if err := capped("join", total); err != nil {
			return nil, err
		}
	}
	return strings.Join(parts, sep), nil
}

func capReplace(params ...any) (any, error) {
	s, _ := params[0].(string)
	old, _ := params[1].(string)
	repl, _ := params[2].(string)
	if grow := len(repl) - len(old); grow > 0 {
		n := strings.Count(s, old) // old == "": len(s)+1 insertions
		if n > 0 && (grow > MaxStringLen || n > (MaxStringLen-len(s))/grow) {
			return nil, tooLong("replace", MaxStringLen+1)
		}
	}
	out := strings.ReplaceAll(s, old, repl)
	return out, capped("replace", len(out))
}

func capToBase64(params ...any) (any, error) {
	s, _ := params[0].(string)
	if err := capped("toBase64", base64.StdEncoding.EncodedLen(len(s))); err != nil {
		return nil, err
	}
	return base64.StdEncoding.EncodeToString([]byte(s)), nil
}

// capToJSON and capString estimate the size of their result by walking the
// value (stopping at the cap) before formatting it: a list of a million
// references to one 64 KiB string is small in memory and 64 GB as text.
func capToJSON(params ...any) (any, error) {
	if err := estimate("toJSON", params[0]); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(params[0], "", "  ")
	if err != nil {
		return nil, err
	}
	return string(b), capped("toJSON", len(b))
}

func capString(params ...any) (any, error) {
	if s, ok := params[0].(string); ok {
		return s, nil
	}
	if err := estimate("string", params[0]); err != nil {
		return nil, err
	}
	return builtin.String(params[0]), nil
}

// estimate fails when the text of v would exceed the cap, counting each
// string's bytes (twice: JSON may escape them) and a few bytes per other
// value; the walk stops as soon as the cap is passed.
func estimate(what string, v any) error {
	n := 0
	var walk func(r reflect.Value, depth int) bool
	walk = func(r reflect.Value, depth int) bool {
		if n > MaxStringLen || depth > 100 {
			return false
		}
		for r.Kind() == reflect.Interface || r.Kind() == reflect.Pointer {
			if r.IsNil() {
				n += 4
				return true
			}
			r = r.Elem()
		}
		switch r.Kind() {
		case reflect.String:
			n += 2*r.Len() + 2
		case reflect.Slice, reflect.Array:
			n += 2
			for i := 0; i < r.Len(); i++ {
				n += 2
				if !walk(r.Index(i), depth+1) {
					return false
				}
			}
		case reflect.Map:
			n += 2
			it := r.MapRange()
			for it.Next() {
				n += 4
				if !walk(it.Key(), depth+1) || !walk(it.Value(), depth+1) {
					return false
				}
			}
		case reflect.Struct:
			for i := 0; i < r.NumField(); i++ {
				n += len(r.Type().Field(i).Name) + 4
				if r.Type().Field(i).IsExported() && !walk(r.Field(i), depth+1) {
					return false
				}
			}
		default:
			n += 24
		}
		return n <= MaxStringLen
	}
	if !walk(reflect.ValueOf(v), 0) {
		return tooLong(what, n)
	}
	return nil
}
