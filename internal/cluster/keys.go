package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/plasmastream/plasmastream/internal/wire"
)

// The directory's keys and records (docs/cluster.md has the layout).

func (d *Directory) nodeKey(name string) string { return d.prefix + "nodes/" + name }

func (d *Directory) groupKey(group, name string) string {
	return d.prefix + "groups/" + group + "/" + name
}

func (d *Directory) objectPrefix(id wire.ID) string {
	return d.prefix + "objects/" + id.String() + "/"
}

func (d *Directory) objectKey(id wire.ID) string { return d.objectPrefix(id) + d.self.Name }

func nodeRecord(n Node) string {
	if n.Groups == nil {
		n.Groups = []string{}
	}
	b, _ := json.Marshal(n)
	return string(b)
}

func parseNode(b []byte) (Node, error) {
	var n Node
	if err := json.Unmarshal(b, &n); err != nil {
		return n, err
	}
	if n.Name == "" {
		return n, errors.New("no name")
	}
	return n, nil
}

func locationRecord(l loc) string {
	r := struct {
		Size   uint64      `json:"size"`
		Digest wire.Digest `json:"digest"` // "" when unknown
	}{Size: l.size, Digest: l.digest}
	b, _ := json.Marshal(r)
	return string(b)
}

func normGroups(gs []string) []string {
	out := slices.Clone(gs)
	slices.Sort(out)
	return slices.Compact(out)
}

// validName accepts names that are one key segment: non-empty UTF-8 without
// '/', spaces or control characters.
func validName(what, s string) error {
	if s == "" {
		return fmt.Errorf("cluster: empty %s name", what)
	}
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool {
		return r == '/' || unicode.IsSpace(r) || unicode.IsControl(r)
	}) >= 0 {
		return fmt.Errorf("cluster: bad %s name %q: no '/', spaces or control characters", what, s)
	}
	return nil
}
