package bridge

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/plasmastream/plasmastream/internal/trust"
	"github.com/plasmastream/plasmastream/internal/wire"
)

// Payloads of the bridge's subjects, as JSON (docs/nats-bridge.md). Every
// decoder here reads bytes from anyone on the NATS: each has a fuzz
// target.

// maxPayload bounds what a decoder accepts; NATS's own limit is 1 MiB.
const maxPayload = 64 << 10

// ImportRequest is the payload of <prefix>.import: a path alone (as text,
// what `nats request plasma.import /path` sends) or a JSON object.
type ImportRequest struct {
	Path     string `json:"path"`
	Announce string `json:"announce,omitempty"` // also announce the blob on this subject
	Name     string `json:"name,omitempty"`     // its name in the announcement (default: the file's base name)
}

// DecodeImport reads an import request.
func DecodeImport(p []byte) (ImportRequest, error) {
	var r ImportRequest
	if err := decodeTextOrJSON(p, &r, func(s string) { r.Path = s }); err != nil {
		return r, err
	}
	if r.Path == "" {
		return r, errors.New("no path: send the path of a file on the node's machine")
	}
	return r, checkSubjectOpt(r.Announce)
}

// AnnounceRequest is the payload of <prefix>.announce: JSON, or the text
// "ID-or-HASH SUBJECT [NAME]".
type AnnounceRequest struct {
	Object  string `json:"id"` // an object id (40 hex) or a BLAKE3 hash (64 hex)
	Subject string `json:"subject"`
	Name    string `json:"name,omitempty"`
}

// DecodeAnnounceRequest reads an announce request.
func DecodeAnnounceRequest(p []byte) (AnnounceRequest, error) {
	var r AnnounceRequest
	err := decodeTextOrJSON(p, &r, func(s string) {
		f := strings.Fields(s)
		if len(f) > 0 {
			r.Object = f[0]
		}
		if len(f) > 1 {
			r.Subject = f[1]
		}
		if len(f) > 2 {
			r.Name = strings.Join(f[2:], " ")
		}
	})
	if err != nil {
		return r, err
	}
	if r.Subject == "" {
		return r, errors.New("no subject: send \"ID SUBJECT [NAME]\" or {\"id\": ..., \"subject\": ...}")
	}
	if _, _, err := ParseObject(r.Object); err != nil {
		return r, err
	}
	return r, CheckSubject(r.Subject)
}

// ParseObject reads an object id (40 hex) or a BLAKE3 hash (64 hex, whose
// first 20 bytes are the id of the blob stored under it).
func ParseObject(s string) (wire.ID, wire.Digest, error) {
	s = strings.TrimSpace(s)
	switch len(s) {
	case 2 * len(wire.ID{}):
		id, err := wire.ParseID(s)
		return id, wire.Digest{}, err
	case 2 * len(wire.Digest{}):
		d, err := wire.ParseDigest(s)
		return wire.ID(d[:len(wire.ID{})]), d, err
	}
	return wire.ID{}, wire.Digest{}, fmt.Errorf("%q is neither an object id (40 hex digits) nor a BLAKE3 hash (64)", clip(s))
}

// decodeTextOrJSON decodes p as JSON into v if it starts with '{', else
// hands it to text as a trimmed UTF-8 string.
func decodeTextOrJSON(p []byte, v any, text func(string)) error {
	if len(p) > maxPayload {
		return fmt.Errorf("payload of %d bytes: at most %d", len(p), maxPayload)
	}
	t := bytes.TrimSpace(p)
	if len(t) > 0 && t[0] == '{' {
		if err := json.Unmarshal(t, v); err != nil {
			return fmt.Errorf("payload is not valid JSON: %v", err)
		}
		return nil
	}
	if !utf8.Valid(t) {
		return errors.New("payload is not UTF-8 text")
	}
	text(string(t))
	return nil
}

// Announcement says that a node holds a blob: published on
// <prefix>.blobs.<subject> when announced, and on
// <prefix>.replicated.<subject> (Replicated set) by each node that
// fetched it.
type Announcement struct {
	Hash       wire.Digest `json:"hash"`
	Size       uint64      `json:"size"`
	Name       string      `json:"name,omitempty"`
	Subject    string      `json:"subject"`
	Node       string      `json:"node"`
	Addr       string      `json:"addr"` // the holder's stream server
	Replicated bool        `json:"replicated,omitempty"`
	// Key and Sig: the holder's public key and its signature of
	// signedBytes, both hex; empty from a node without a key.
	Key string `json:"key,omitempty"`
	Sig string `json:"sig,omitempty"`
	// What a replication took (Replicated only; not signed).
	Bytes   uint64  `json:"bytes,omitempty"`
	Resumed uint64  `json:"resumed,omitempty"`
	Seconds float64 `json:"seconds,omitempty"`
}

// ID is the id the blob is stored under: its hash's first 20 bytes.
func (a *Announcement) ID() wire.ID { return wire.ID(a.Hash[:len(wire.ID{})]) }

// signedBytes is what the holder signs: a domain tag and every field a
// subscriber acts on, length-prefixed so that no two announcements share
// them.
func (a *Announcement) signedBytes() []byte {
	b := []byte("plasma-stream announcement v1\x00")
	b = append(b, a.Hash[:]...)
	b = strconv.AppendUint(b, a.Size, 10)
	for _, s := range []string{a.Name, a.Subject, a.Node, a.Addr, strconv.FormatBool(a.Replicated)} {
		b = strconv.AppendInt(append(b, 0), int64(len(s)), 10)
		b = append(append(b, ':'), s...)
	}
	return b
}

// Sign sets Key and Sig.
func (a *Announcement) Sign(id trust.Identity) {
	a.Key = id.Public().String()
	a.Sig = fmt.Sprintf("%x", id.Sign(a.signedBytes()))
}

// Signer is the key that signed a, if its signature is valid.
func (a *Announcement) Signer() (trust.PublicKey, bool) {
	if a.Key == "" || a.Sig == "" {
		return trust.PublicKey{}, false
	}
	k, err := trust.ParsePublicKey(a.Key)
	if err != nil {
		return trust.PublicKey{}, false
	}
	sig, err := hex.DecodeString(a.Sig)
	if err != nil {
		return trust.PublicKey{}, false
	}
	return k, k.Verify(a.signedBytes(), sig)
}

// DecodeAnnouncement reads an announcement received on subject (its
// <subject> part, which the announcement must name).
func DecodeAnnouncement(p []byte, subject string) (Announcement, error) {
	var a Announcement
	if len(p) > maxPayload {
		return a, fmt.Errorf("announcement of %d bytes: at most %d", len(p), maxPayload)
	}
	if err := json.Unmarshal(p, &a); err != nil {
		return a, fmt.Errorf("announcement is not valid JSON: %v", err)
	}
	switch {
	case a.Hash.IsZero():
		return a, errors.New("announcement without a hash")
	case a.Node == "" || a.Addr == "":
		return a, errors.New("announcement without the holder's node and address")
	case a.Subject != subject:
		return a, fmt.Errorf("announcement for subject %q received on %q", clip(a.Subject), clip(subject))
	}
	return a, nil
}

// CheckSubject reports whether s can follow "<prefix>.blobs." when
// announcing: dot-separated tokens, no wildcards, no spaces.
func CheckSubject(s string) error {
	if err := checkPattern(s); err != nil {
		return err
	}
	if strings.ContainsAny(s, "*>") {
		return fmt.Errorf("subject %q: wildcards are for subscribing; announce on a subject without * or >", clip(s))
	}
	return nil
}

func checkSubjectOpt(s string) error {
	if s == "" {
		return nil
	}
	return CheckSubject(s)
}

// checkPattern reports whether s is a subject or a subscription pattern:
// dot-separated non-empty tokens, "*" a whole token, ">" only the last.
func checkPattern(s string) error {
	if s == "" {
		return errors.New("empty subject")
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		switch {
		case t == "":
			return fmt.Errorf("subject %q has an empty token", clip(s))
		case strings.ContainsAny(t, " \t\r\n"):
			return fmt.Errorf("subject %q contains white space", clip(s))
		case t == ">" && i != len(toks)-1:
			return fmt.Errorf("subject %q: > may only be the last token", clip(s))
		case len(t) > 1 && strings.ContainsAny(t, "*>"):
			return fmt.Errorf("subject %q: * and > are whole tokens", clip(s))
		}
	}
	return nil
}

// clip shortens untrusted text before it goes into an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
