package streaming

import (
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// ServiceType is a kind of streaming service (a "streamer").
type ServiceType int

const (
	Unknown ServiceType = iota
	File
	NATS
)

var (
	typesMu      sync.RWMutex
	serviceNames = map[ServiceType]string{File: "file", NATS: "nats"}
)

// ServiceTypeFromString returns the ServiceType named name ("file",
// "nats", or one RegisterServiceType added), Unknown for any other name.
func ServiceTypeFromString(name string) ServiceType {
	name = strings.ToLower(strings.TrimSpace(name))
	typesMu.RLock()
	defer typesMu.RUnlock()
	for t, n := range serviceNames {
		if n == name {
			return t
		}
	}
	return Unknown
}

// String is the name of t as store.streamers lists it.
func (t ServiceType) String() string {
	typesMu.RLock()
	defer typesMu.RUnlock()
	if n, ok := serviceNames[t]; ok {
		return n
	}
	return "unknown"
}

// RegisterServiceType adds a kind of streaming service named name (lower
// case letters, digits, '-' and '_') and returns its ServiceType: a
// program that embeds a stream server puts its ServiceConstructor under
// it in the table it passes to LoadStreamingServices, and store.streamers
// may then name it, with its options under streamers.<name>.
func RegisterServiceType(name string) (ServiceType, error) {
	if name == "" || strings.TrimLeft(name, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return Unknown, fmt.Errorf("streamer name %q: use lower case letters, digits, '-' and '_'", name)
	}
	typesMu.Lock()
	defer typesMu.Unlock()
	last := Unknown
	for t, n := range serviceNames {
		if n == name {
			return Unknown, fmt.Errorf("streamer %q is already registered", name)
		}
		last = max(last, t)
	}
	serviceNames[last+1] = name
	return last + 1, nil
}

// Streaming option keys: the keys of the stream server's TOML file
// ([store] streamers = [...]; [streamers.file] keys = [...]) and of its
// flags (--store.streamers, --streamers.file.keys).
const (
	OptStoreStreamers     = "store.streamers"
	OptStoreBlockInterval = "store.block-interval"
	OptStoreBlockChanges  = "store.block-changes"

	OptStreamersFileKeys            = "streamers.file.keys"
	OptStreamersFileWriteDir        = "streamers.file.write_dir"
	OptStreamersFilePrefix          = "streamers.file.prefix"
	OptStreamersFileOutputMetadata  = "streamers.file.output-metadata"
	OptStreamersFileStopNodeOnError = "streamers.file.stop-node-on-error"
	OptStreamersFileFsync           = "streamers.file.fsync"
	OptStreamersFileMaxPending      = "streamers.file.max-pending"

	OptStreamersNATSKeys            = "streamers.nats.keys"
	OptStreamersNATSPrefix          = "streamers.nats.prefix"
	OptStreamersNATSStream          = "streamers.nats.stream"
	OptStreamersNATSStopNodeOnError = "streamers.nats.stop-node-on-error"
	OptStreamersNATSMaxPending      = "streamers.nats.max-pending"
)

// The store keys: the named stores whose changes stream.
const (
	StoreObjects   = "objects"
	StoreLocations = "locations"
	StoreNodes     = "nodes"
	StoreGroups    = "groups"
	StoreTransfers = "transfers"
)

// StoreKeys are every store key, in name order.
var StoreKeys = []string{StoreGroups, StoreLocations, StoreNodes, StoreObjects, StoreTransfers}

// AppOptions gives a streaming service its options by key (the option
// keys above); Get returns nil for an option not set.
type AppOptions interface {
	Get(key string) any
}

// Options is an AppOptions held in a map.
type Options map[string]any

func (o Options) Get(key string) any { return o[key] }

// Env is what the node gives a streaming service besides its options.
type Env struct {
	Node   string       // the node's name
	Logger *slog.Logger // nil: discard
	// NATS is the node's NATS connection (plasma-stream-server --nats);
	// nil without one.
	NATS *nats.Conn
	// Fail stops the node: a service with stop-node-on-error calls it
	// with the error of a block it could not write, and takes no more
	// blocks. Nil: the error is only logged.
	Fail func(error)
	// Errors counts a block a service lost (stop-node-on-error = false):
	// the node's metrics. Nil: not counted.
	Errors func(service string)
}

func (e *Env) logger() *slog.Logger {
	if e.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Logger
}

// StreamingService is a destination of the node's state changes.
//
// The node numbers blocks from one past the highest LastBlock of its
// services, calls Stream once, then ListenBlock with every block in order
// (from one goroutine; it must not block on I/O: a service queues the
// block and writes it from the goroutines Stream started), and Close at
// the end.
type StreamingService interface {
	// Stream starts the service's goroutines, counted in wg; they end
	// when quit is closed, after writing what is queued if they can.
	Stream(wg *sync.WaitGroup, quit <-chan struct{}) error
	// ListenBlock takes one block. The block is shared: read only.
	ListenBlock(b *Block)
	// LastBlock is the highest block number the destination already
	// holds from an earlier run of this node (0: none). A
	// *LastBlockUnknownError says the destination cannot be asked now and
	// the service goes on anyway: the others number the blocks.
	LastBlock() (uint64, error)
	io.Closer
}

// Backlog is how far a streaming service's destination is behind the
// committer: the blocks committed that it has not yet written or
// published, and their bytes.
type Backlog struct {
	Blocks int   `json:"blocks"`
	Bytes  int64 `json:"bytes"`
}

// Backlogged is a streaming service that reports its backlog (the file
// and NATS streamers do); name is its kind ("file", "nats").
type Backlogged interface {
	Backlog() (name string, b Backlog)
}

// ServiceConstructor builds a streaming service from the options, the
// store keys it exposes (nil: all) and the node's Env.
type ServiceConstructor func(opts AppOptions, keys []string, env Env) (StreamingService, error)

// ServiceConstructorLookupTable returns the constructors of the built-in
// services; a program that embeds a stream server adds its own to the
// table it passes to LoadStreamingServices.
func ServiceConstructorLookupTable() map[ServiceType]ServiceConstructor {
	return map[ServiceType]ServiceConstructor{File: NewFileStreamingService, NATS: NewNATSStreamingService}
}

// NewServiceConstructor returns the constructor of the built-in service
// named name.
func NewServiceConstructor(name string) (ServiceConstructor, error) {
	t := ServiceTypeFromString(name)
	if c, ok := ServiceConstructorLookupTable()[t]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("unknown streamer %q in %s: the streamers are %s", name, OptStoreStreamers, knownNames())
}

func knownNames() string {
	typesMu.RLock()
	defer typesMu.RUnlock()
	var names []string
	for _, n := range serviceNames {
		names = append(names, fmt.Sprintf("%q", n))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// LoadStreamingServices builds the services store.streamers names, each
// with the keys of its streamers.<name>.keys ("*" or not set: all; empty:
// the service is off and not built). table nil:
// ServiceConstructorLookupTable.
func LoadStreamingServices(opts AppOptions, table map[ServiceType]ServiceConstructor, env Env) ([]StreamingService, error) {
	if table == nil {
		table = ServiceConstructorLookupTable()
	}
	names, err := stringsOpt(opts, OptStoreStreamers)
	if err != nil {
		return nil, err
	}
	var out []StreamingService
	fail := func(err error) ([]StreamingService, error) {
		for _, s := range out {
			s.Close()
		}
		return nil, err
	}
	seen := map[ServiceType]bool{}
	for _, name := range names {
		t := ServiceTypeFromString(name)
		c, ok := table[t]
		if !ok {
			return fail(fmt.Errorf("unknown streamer %q in %s: the streamers are %s", name, OptStoreStreamers, knownNames()))
		}
		if seen[t] {
			return fail(fmt.Errorf("streamer %q listed twice in %s", name, OptStoreStreamers))
		}
		seen[t] = true
		keysOpt := "streamers." + t.String() + ".keys"
		keys, err := stringsOpt(opts, keysOpt)
		if err != nil {
			return fail(err)
		}
		if keys == nil {
			keys = []string{"*"} // not set: all, as the flags' default
		}
		keys, err = ExposedKeys(keysOpt, keys)
		if err != nil {
			return fail(err)
		}
		if keys != nil && len(keys) == 0 {
			continue // keys = []: the service is off
		}
		s, err := c(opts, keys, env)
		if err != nil {
			return fail(fmt.Errorf("streamer %q: %w", name, err))
		}
		out = append(out, s)
	}
	return out, nil
}

// ExposedKeys checks a keys option: ["*"] (or a list holding "*") is nil,
// all keys; [] is an empty non-nil list, none; otherwise the named keys,
// each one of StoreKeys.
func ExposedKeys(opt string, keys []string) ([]string, error) {
	out := []string{}
	for _, k := range keys {
		if k == "*" {
			return nil, nil
		}
		if _, ok := keyIndex(k); !ok {
			return nil, fmt.Errorf("%s: unknown store key %q: the keys are %s (or \"*\")", opt, k, strings.Join(StoreKeys, ", "))
		}
		out = append(out, k)
	}
	return out, nil
}

func keyIndex(k string) (int, bool) {
	i := sort.SearchStrings(StoreKeys, k)
	return i, i < len(StoreKeys) && StoreKeys[i] == k
}

// Typed reads of options, accepting what flags and TOML give.

func stringsOpt(o AppOptions, key string) ([]string, error) {
	switch v := o.Get(key).(type) {
	case nil:
		return nil, nil
	case []string:
		return v, nil
	case string:
		if v == "" {
			return []string{}, nil
		}
		return strings.Split(v, ","), nil
	case []any:
		out := make([]string, len(v))
		for i, e := range v {
			out[i] = fmt.Sprint(e)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%s: want a list of names, got %v", key, v)
	}
}

func stringOpt(o AppOptions, key, def string) (string, error) {
	switch v := o.Get(key).(type) {
	case nil:
		return def, nil
	case string:
		if v == "" {
			return def, nil
		}
		return v, nil
	default:
		return "", fmt.Errorf("%s: want a string, got %v", key, v)
	}
}

func boolOpt(o AppOptions, key string, def bool) (bool, error) {
	switch v := o.Get(key).(type) {
	case nil:
		return def, nil
	case bool:
		return v, nil
	default:
		return false, fmt.Errorf("%s: want true or false, got %v", key, v)
	}
}

func intOpt(o AppOptions, key string, def int64) (int64, error) {
	switch v := o.Get(key).(type) {
	case nil:
		return def, nil
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	case uint64:
		return int64(v), nil
	default:
		return 0, fmt.Errorf("%s: want a number, got %v", key, v)
	}
}

func durationOpt(o AppOptions, key string, def time.Duration) (time.Duration, error) {
	switch v := o.Get(key).(type) {
	case nil:
		return def, nil
	case time.Duration:
		return v, nil
	case string:
		return time.ParseDuration(v)
	default:
		return 0, fmt.Errorf("%s: want a duration such as 1s, got %v", key, v)
	}
}
