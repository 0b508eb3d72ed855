package deploy_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// metricName is a Prometheus series name as the code spells it.
var metricName = regexp.MustCompile(`"(plasma_(?:store|stream|bridge)_[a-z_]+)"`)

// definedMetrics are the series names defined in the code (outside
// tests) under ../internal and ../streaming.
func definedMetrics(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, root := range []string{"../internal", "../streaming"} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range metricName.FindAllSubmatch(b, -1) {
				seen[string(m[1])] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	if len(out) < 40 {
		t.Fatalf("found only %d series names in the code: %v", len(out), out)
	}
	return out
}

// Every series the servers define has a row in docs/metrics.md and is
// charted by the Grafana dashboard (deploy/grafana/plasma.json), whose
// queries name only series that exist.
func TestMetricsDocumentedAndCharted(t *testing.T) {
	names := definedMetrics(t)
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("grafana/plasma.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana/plasma.json: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	queries := strings.Join(exprs, "\n")
	for _, n := range names {
		if !strings.Contains(string(doc), "| `"+n+"` |") {
			t.Errorf("docs/metrics.md has no row for %s", n)
		}
		if !regexp.MustCompile(regexp.QuoteMeta(n) + `(_bucket|_count|_sum)?\b`).MatchString(queries) {
			t.Errorf("grafana/plasma.json charts nothing from %s", n)
		}
	}
	// No query names a series the code does not define (a renamed one).
	for _, m := range regexp.MustCompile(`plasma_(?:store|stream|bridge)_[a-z_]+`).FindAllString(queries, -1) {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
		if !slices.Contains(names, base) {
			t.Errorf("grafana/plasma.json queries %s, which no server defines", m)
		}
	}
}
