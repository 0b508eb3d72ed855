package cliutil

import (
	"fmt"
	"sort"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"
)

// ApplyConfigFile sets, from a TOML file, every flag of fs the command line
// did not set: keys are the long flag names ("max-connections = 64"), and
// arrays set repeatable flags once per element. A table's keys are the
// flags named by its path ("[streamers.file] fsync = true" sets
// --streamers.file.fsync). Flags given on the command line win. An
// unknown key is an error naming it.
func ApplyConfigFile(fs *pflag.FlagSet, path string) error {
	var m map[string]any
	if _, err := toml.DecodeFile(path, &m); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	flat := map[string]any{}
	flatten("", m, flat)
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := fs.Lookup(k)
		if f == nil || k == "config" || k == "help" || k == "version" {
			return fmt.Errorf("config file %s: unknown option %q", path, k)
		}
		if f.Changed {
			continue
		}
		values := []any{flat[k]}
		if list, ok := flat[k].([]any); ok {
			values = list
			if sv, ok := f.Value.(pflag.SliceValue); ok && len(list) == 0 {
				sv.Replace(nil) // "keys = []": an empty list, not the default
				continue
			}
		}
		for _, v := range values {
			if err := fs.Set(k, fmt.Sprint(v)); err != nil {
				return fmt.Errorf("config file %s: %s = %v: %w", path, k, v, err)
			}
		}
	}
	return nil
}

// flatten puts m's values into out under their dotted paths.
func flatten(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		if t, ok := v.(map[string]any); ok {
			flatten(prefix+k+".", t, out)
			continue
		}
		out[prefix+k] = v
	}
}

// SizeVar defines a byte-count flag stored in p, whose current value is the
// default (shown in --help as FormatSize writes it). The flag reads what
// ParseSize reads: "1073741824", "512MiB", "1G".
func SizeVar[T int64 | uint64](fs *pflag.FlagSet, p *T, name, usage string) {
	fs.Var(sizeValue[T]{p}, name, usage)
}

// SizeVarP is SizeVar with a one-letter shorthand.
func SizeVarP[T int64 | uint64](fs *pflag.FlagSet, p *T, name, shorthand, usage string) {
	fs.VarP(sizeValue[T]{p}, name, shorthand, usage)
}

type sizeValue[T int64 | uint64] struct{ p *T }

func (v sizeValue[T]) String() string { return FormatSize(uint64(*v.p)) }
func (v sizeValue[T]) Type() string   { return "size" }

func (v sizeValue[T]) Set(s string) error {
	n, err := ParseSize(s)
	if err != nil {
		return err
	}
	if T(n) < 0 || uint64(T(n)) != n {
		return fmt.Errorf("size %q is too large", s)
	}
	*v.p = T(n)
	return nil
}
