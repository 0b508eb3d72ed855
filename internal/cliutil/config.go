package cliutil

import (
	"fmt"
	"sort"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"
)

// ApplyConfigFile sets, from a TOML file, every flag of fs the command line
// did not set: keys are the long flag names ("max-connections = 64"), and
// arrays set repeatable flags once per element. Flags given on the command
// line win. An unknown key is an error naming it.
func ApplyConfigFile(fs *pflag.FlagSet, path string) error {
	var m map[string]any
	if _, err := toml.DecodeFile(path, &m); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
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
		values := []any{m[k]}
		if list, ok := m[k].([]any); ok {
			values = list
		}
		for _, v := range values {
			if err := fs.Set(k, fmt.Sprint(v)); err != nil {
				return fmt.Errorf("config file %s: %s = %v: %w", path, k, v, err)
			}
		}
	}
	return nil
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
