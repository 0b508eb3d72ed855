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
