// Package deploy_test checks the deployment files against the real
// binaries: systemd units verified by systemd-analyze, every flag and
// TOML key they use known to the binary, the Kubernetes manifests well
// formed, and the container's binaries static.
package deploy_test

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"

	"github.com/plasmastream/plasmastream/internal/testutil"
)

// help is a binary's --help output; bin may name a subcommand too
// ("plasma keygen").
func help(t *testing.T, bin string) string {
	t.Helper()
	words := strings.Fields(bin)
	out, _ := exec.Command(filepath.Join(testutil.Binaries(t), words[0]), append(words[1:], "--help")...).CombinedOutput()
	if !strings.Contains(string(out), "--") {
		t.Fatalf("%s --help printed no flags:\n%s", bin, out)
	}
	return string(out)
}

var flagRE = regexp.MustCompile(`(?:^|\s|")(--[a-z][a-z0-9-]*)`)

// checkFlags fails for every --flag in args that bin does not define.
func checkFlags(t *testing.T, where, bin, args string) {
	t.Helper()
	h := help(t, bin)
	for _, m := range flagRE.FindAllStringSubmatch(args, -1) {
		if !regexp.MustCompile(`(?m)` + regexp.QuoteMeta(m[1]) + `\b`).MatchString(h) {
			t.Errorf("%s: %s has no flag %s", where, bin, m[1])
		}
	}
}

func TestSystemdUnits(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatal("systemd-analyze is missing (Debian package systemd)")
	}
	dir := t.TempDir()
	bins := testutil.Binaries(t)
	var units []string
	for _, name := range []string{"plasma-store.service", "plasma-stream.service"} {
		b, err := os.ReadFile(filepath.Join("systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		// The units name /usr/local/bin; verify them against the binaries built here.
		unit := strings.ReplaceAll(string(b), "/usr/local/bin/", bins+"/")
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "ExecStart=/usr/local/bin/"); ok {
				bin, args, _ := strings.Cut(rest, " ")
				checkFlags(t, name, bin, args)
			}
		}
	}
	out, err := exec.Command("systemd-analyze", append([]string{"verify"}, units...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The example stream.toml and the one in the Kubernetes ConfigMap hold
// only options the stream server knows, and it accepts them.
func TestStreamConfigs(t *testing.T) {
	example, err := os.ReadFile("stream.toml")
	if err != nil {
		t.Fatal(err)
	}
	configs := map[string]string{"stream.toml": string(example)}
	for _, doc := range manifests(t) {
		if doc["kind"] == "ConfigMap" && dig(doc, "metadata", "name") == "plasma-stream" {
			configs["plasma.yaml ConfigMap"] = dig(doc, "data", "stream.toml").(string)
		}
	}
	if len(configs) != 2 {
		t.Fatalf("found %d configurations, want the example and the ConfigMap's", len(configs))
	}
	h := help(t, "plasma-stream-server")
	for where, text := range configs {
		var m map[string]any
		if _, err := toml.Decode(text, &m); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		for k := range m {
			if !strings.Contains(h, "--"+k+" ") {
				t.Errorf("%s: key %q is not a plasma-stream-server option", where, k)
			}
		}
	}
}

func manifests(t *testing.T) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join("kubernetes", "plasma.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []map[string]any
	dec := yaml.NewDecoder(f)
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			if err.Error() == "EOF" {
				return docs
			}
			t.Fatalf("plasma.yaml: %v", err)
		}
		docs = append(docs, d)
	}
}

// dig follows map keys.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// The DaemonSet runs a store and a stream server sharing the socket
// volume, with flags the binaries know and probes on the HTTP port.
func TestKubernetesDaemonSet(t *testing.T) {
	var ds map[string]any
	for _, d := range manifests(t) {
		if d["kind"] == "DaemonSet" {
			ds = d
		}
	}
	if ds == nil {
		t.Fatal("no DaemonSet in plasma.yaml")
	}
	spec := dig(ds, "spec", "template", "spec")
	volumes := map[string]bool{}
	for _, v := range dig(spec, "volumes").([]any) {
		volumes[dig(v, "name").(string)] = true
	}
	binOf := map[string]string{"store": "plasma-store-server", "stream": "plasma-stream-server", "keygen": "plasma keygen"}
	mounts := map[string][]string{}
	for _, list := range []string{"initContainers", "containers"} {
		for _, c := range dig(spec, list).([]any) {
			name := dig(c, "name").(string)
			var args []string
			for _, a := range append(asList(dig(c, "command")), asList(dig(c, "args"))...) {
				args = append(args, a)
			}
			checkFlags(t, "container "+name, binOf[name], strings.Join(args, " "))
			for _, m := range asMaps(dig(c, "volumeMounts")) {
				v := m["name"].(string)
				if !volumes[v] {
					t.Errorf("container %s mounts volume %s, which is not defined", name, v)
				}
				mounts[name] = append(mounts[name], v+":"+m["mountPath"].(string))
			}
			if name == "stream" {
				if p := dig(c, "livenessProbe", "httpGet", "path"); p != "/healthz" {
					t.Errorf("stream liveness probe %v", p)
				}
				if p := dig(c, "readinessProbe", "httpGet", "path"); p != "/readyz" {
					t.Errorf("stream readiness probe %v", p)
				}
			}
		}
	}
	for _, v := range asMaps(dig(spec, "volumes")) {
		if v["name"] == "socket" && dig(v, "emptyDir", "medium") != "Memory" {
			t.Errorf("the shared socket volume is not memory-backed: %v", v)
		}
	}
	shared := false
	for _, a := range mounts["store"] {
		for _, b := range mounts["stream"] {
			shared = shared || a == b && strings.HasPrefix(a, "socket:")
		}
	}
	if !shared {
		t.Errorf("store and stream do not share the socket volume: %v", mounts)
	}
}

// The manifest reaches etcd and NATS as external services (not embedded
// in the pods): their addresses are Kubernetes service names.
func TestKubernetesExternalServices(t *testing.T) {
	for _, doc := range manifests(t) {
		if doc["kind"] != "ConfigMap" || dig(doc, "metadata", "name") != "plasma-stream" {
			continue
		}
		var cfg map[string]any
		if _, err := toml.Decode(dig(doc, "data", "stream.toml").(string), &cfg); err != nil {
			t.Fatal(err)
		}
		for key, scheme := range map[string]string{"etcd": "https://", "nats": "nats://"} {
			v, _ := cfg[key].(string)
			if !strings.HasPrefix(v, scheme) || !strings.Contains(v, ".svc:") {
				t.Errorf("stream.toml %s = %q, want an external service (%s<name>.<namespace>.svc:PORT)", key, v, scheme)
			}
		}
		return
	}
	t.Fatal("no plasma-stream ConfigMap in plasma.yaml")
}

func asList(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		out = append(out, x.(string))
	}
	return out
}

func asMaps(v any) []map[string]any {
	var out []map[string]any
	l, _ := v.([]any)
	for _, x := range l {
		out = append(out, x.(map[string]any))
	}
	return out
}

// build.sh --binaries makes static binaries, which the FROM-scratch
// image needs, and everything the Dockerfile copies exists.
func TestContainerBinariesAreStatic(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command("./container/build.sh", "--binaries")
	cmd.Env = append(os.Environ(), "PLASMA_BIN_DIR="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build.sh --binaries: %v\n%s", err, b)
	}
	dockerfile, err := os.ReadFile(filepath.Join("container", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^FROM scratch$`).Match(dockerfile) {
		t.Error("the Dockerfile does not start from scratch")
	}
	for _, line := range strings.Split(string(dockerfile), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "COPY" {
			continue
		}
		for _, src := range f[1 : len(f)-1] {
			path := filepath.Join("container", src)
			if name, ok := strings.CutPrefix(src, "bin/"); ok {
				path = filepath.Join(out, name)
				checkStatic(t, path)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("the Dockerfile copies %s: %v", src, err)
			}
		}
	}
}

func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s is dynamically linked", filepath.Base(path))
		}
	}
}
