package trust

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/plasmastream/plasmastream/internal/fsutil"
)

// DefaultKeyFile is where `plasma keygen` writes a key when not told.
const DefaultKeyFile = "plasma.key"

// ErrKeyExists is returned by WriteKey when the file exists and is not
// to be replaced.
var ErrKeyExists = errors.New("a file is already there")

// PublicKey is an Ed25519 public key: a node's name on the wire and in
// trust files.
type PublicKey [ed25519.PublicKeySize]byte

// String is the key as 64 lower-case hex digits.
func (k PublicKey) String() string { return hex.EncodeToString(k[:]) }

// ParsePublicKey reads 64 hex digits.
func ParsePublicKey(s string) (PublicKey, error) {
	var k PublicKey
	if len(s) != 2*len(k) {
		return k, fmt.Errorf("public key %q: want %d hex digits, got %d characters", clip(s), 2*len(k), len(s))
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return k, fmt.Errorf("public key %q: want %d hex digits", clip(s), 2*len(k))
	}
	return k, nil
}

// clip shortens untrusted text before it goes into an error.
func clip(s string) string {
	if len(s) > 70 {
		return s[:67] + "..."
	}
	return s
}

// Identity is a node's Ed25519 key pair. Its zero value is not usable.
// It prints as its public key: the private half never reaches a log.
type Identity struct {
	priv ed25519.PrivateKey
}

// Generate makes a new identity from the system's random source.
func Generate() (Identity, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Identity{}, fmt.Errorf("generate an Ed25519 key: %w", err)
	}
	return Identity{priv: priv}, nil
}

// Public returns the identity's public key.
func (id Identity) Public() PublicKey {
	var k PublicKey
	copy(k[:], id.priv.Public().(ed25519.PublicKey))
	return k
}

// String names the identity by its public key; it never shows the private
// key, also under %v and %+v.
func (id Identity) String() string {
	if id.priv == nil {
		return "identity(none)"
	}
	return "identity " + id.Public().String()
}

// GoString keeps %#v from printing the private key.
func (id Identity) GoString() string { return id.String() }

// keyFileSize is the exact content of a key file: the hex seed and "\n".
const keyFileSize = 2*ed25519.SeedSize + 1

// LoadKey reads a private key file. It refuses a file that group or others
// may access, and content that is not one line of 64 hex digits; its
// errors name the file and never echo what is in it.
func LoadKey(path string) (Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return Identity{}, fmt.Errorf("private key: %w", err)
	}
	defer f.Close()
	// The mode is read from the open file, so it is the file read below.
	st, err := f.Stat()
	if err != nil {
		return Identity{}, fmt.Errorf("private key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return Identity{}, fmt.Errorf("private key %s is not a regular file", path)
	}
	if err := checkPrivateMode(path, st); err != nil {
		return Identity{}, err
	}
	b, err := io.ReadAll(io.LimitReader(f, keyFileSize+2))
	if err != nil {
		return Identity{}, fmt.Errorf("private key %s: %w", path, err)
	}
	defer clear(b)
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	seed := make([]byte, ed25519.SeedSize)
	defer clear(seed)
	if len(b) != 2*ed25519.SeedSize {
		return Identity{}, fmt.Errorf("private key %s is malformed: want one line of %d hex digits (written by plasma keygen)", path, 2*ed25519.SeedSize)
	}
	if _, err := hex.Decode(seed, b); err != nil {
		return Identity{}, fmt.Errorf("private key %s is malformed: it holds a character that is not a hex digit", path)
	}
	return Identity{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// WriteKey writes id's private key to path, mode 0600. The file appears
// whole or not at all: it is written to a temporary file in the same
// directory, synced, and then linked (or, with force, renamed) into
// place. Without force an existing path is never touched and the error
// wraps ErrKeyExists.
func WriteKey(path string, id Identity, force bool) error {
	if id.priv == nil {
		return errors.New("write private key: no identity")
	}
	buf := make([]byte, keyFileSize)
	defer clear(buf)
	hex.Encode(buf, id.priv.Seed())
	buf[len(buf)-1] = '\n'
	if err := writeFileAtomic(path, buf, force); err != nil {
		return fmt.Errorf("write private key %s: %w", path, err)
	}
	return nil
}

// writeFileAtomic writes data to path with mode 0600. The file appears
// whole or not at all: it is written to a temporary file in the same
// directory, synced, and then linked (or, with force, renamed) into
// place, and the directory synced. Without force an existing path is
// never touched and the error wraps ErrKeyExists.
func writeFileAtomic(path string, data []byte, force bool) (err error) {
	dir := filepath.Dir(path)
	if !force {
		if _, err := os.Lstat(path); err == nil {
			return ErrKeyExists
		}
	}
	tmp, err := os.CreateTemp(dir, ".plasma-key-*") // mode 0600
	if err != nil {
		return err
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // after the link or rename, or on failure
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if force {
		err = os.Rename(tmp.Name(), path)
	} else {
		// A link fails if path appeared since the check above: a file
		// another process just wrote is never replaced.
		err = os.Link(tmp.Name(), path)
		if errors.Is(err, os.ErrExist) {
			return ErrKeyExists
		}
	}
	if err != nil {
		return err
	}
	return fsutil.SyncDir(dir)
}

// checkPrivateMode refuses a private key file that others may read (see
// privateModeOK).
func checkPrivateMode(path string, st os.FileInfo) error {
	uid := -1
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		uid = int(sys.Uid)
	}
	if perm := st.Mode().Perm(); !privateModeOK(perm, uid, os.Geteuid()) {
		return fmt.Errorf("private key %s is readable by others (mode %04o): chmod 600 %s", path, perm, path)
	}
	return nil
}

// privateModeOK is PostgreSQL's rule for key files: mode 0600 or
// stricter; or, for a file owned by root and read by another user, 0640
// or stricter: the group may read it, as Kubernetes mounts a secret with
// fsGroup (root-owned, mode 0440).
func privateModeOK(perm os.FileMode, fileUID, euid int) bool {
	if perm&0o077 == 0 {
		return true
	}
	return fileUID == 0 && euid != 0 && perm&0o037 == 0
}
