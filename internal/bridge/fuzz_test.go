package bridge

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/plasmastream/plasmastream/internal/trust"
)

// The payloads of the bridge's subjects come from anyone on the NATS:
// their decoders must never panic, and what they accept must be what the
// bridge then relies on.

func FuzzDecodeImport(f *testing.F) {
	for _, s := range []string{"/data/sloth.jpg", `{"path": "/a", "announce": "x.y", "name": "n"}`, "", "{", `{"path": 1}`, " /a b \n", "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := DecodeImport(p)
		if err != nil {
			return
		}
		if r.Path == "" || (r.Announce != "" && CheckSubject(r.Announce) != nil) {
			t.Fatalf("accepted %q as %+v", p, r)
		}
	})
}

func FuzzDecodeAnnounceRequest(f *testing.F) {
	for _, s := range []string{"0123456789012345678901234567890123456789 a.b name", `{"id": "0123456789012345678901234567890123456789", "subject": "a"}`,
		"x y", "0123456789012345678901234567890123456789 a.*", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := DecodeAnnounceRequest(p)
		if err != nil {
			return
		}
		if _, _, err := ParseObject(r.Object); err != nil || CheckSubject(r.Subject) != nil {
			t.Fatalf("accepted %q as %+v", p, r)
		}
	})
}

func FuzzDecodeAnnouncement(f *testing.F) {
	id, _ := trust.Generate()
	a := Announcement{Size: 5, Name: "n", Subject: "s.t", Node: "a", Addr: "127.0.0.1:1"}
	a.Hash[0] = 1
	a.Sign(id)
	good, _ := json.Marshal(a)
	f.Add(good, "s.t")
	f.Add([]byte(`{"hash": "00", "node": "a"}`), "x")
	f.Add([]byte(strings.Replace(string(good), `"size":5`, `"size":6`, 1)), "s.t")
	f.Fuzz(func(t *testing.T, p []byte, subject string) {
		a, err := DecodeAnnouncement(p, subject)
		if err != nil {
			return
		}
		if a.Hash.IsZero() || a.Node == "" || a.Addr == "" || a.Subject != subject {
			t.Fatalf("accepted %q as %+v", p, a)
		}
		if k, ok := a.Signer(); ok && k.String() != a.Key {
			t.Fatalf("signer %s of an announcement keyed %s", k, a.Key)
		}
	})
}

func FuzzParseSubscription(f *testing.F) {
	for _, s := range []string{"a.>", "a.* " + strings.Repeat("ab", 32), "a.>.b", "", "a b c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sub, err := ParseSubscription(s)
		if err == nil && checkPattern(sub.Subject) != nil {
			t.Fatalf("accepted %q as %+v", s, sub)
		}
	})
}

// The payload of stat and locate: an id or a hash, nothing else.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{strings.Repeat("ab", 20), " " + strings.Repeat("0f", 32) + "\n", "xyz", strings.Repeat("g", 40), ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, hash, err := ParseObject(s)
		if err != nil {
			return
		}
		switch h := strings.ToLower(strings.TrimSpace(s)); {
		case len(h) == 40 && hash.IsZero() && id.String() == h:
		case len(h) == 64 && hash.String() == h && id.String() == h[:40]:
		default:
			t.Fatalf("accepted %q as id %s, hash %s", s, id, hash)
		}
	})
}

// Subscriptions and the replication request's filter are subject
// patterns: every pattern checkPattern accepts matches what NATS matches.
func FuzzMatches(f *testing.F) {
	for _, s := range [][2]string{{"a.>", "a.b"}, {"*.b", "a.b"}, {">", "x"}, {"a.*.c", "a.b.c"}, {"a.b", "a.b.c"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, subject string) {
		if checkPattern(pattern) != nil || CheckSubject(subject) != nil {
			return
		}
		if got, want := matches(pattern, subject), server.SubjectMatchesFilter(subject, pattern); got != want {
			t.Fatalf("matches(%q, %q) = %v; NATS says %v", pattern, subject, got, want)
		}
	})
}

// matches agrees with NATS on wildcards.
func TestMatches(t *testing.T) {
	for _, c := range []struct {
		pattern, subject string
		want             bool
	}{
		{"a.b", "a.b", true}, {"a.*", "a.b", true}, {"a.*", "a.b.c", false}, {"a.>", "a.b.c", true},
		{"a.>", "a", false}, {"*.b", "a.b", true}, {"a.b", "a.c", false}, {"a", "a.b", false},
	} {
		if got := matches(c.pattern, c.subject); got != c.want {
			t.Errorf("matches(%q, %q) = %v; want %v", c.pattern, c.subject, got, c.want)
		}
	}
}
