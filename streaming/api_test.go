package streaming_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/plasmastream/plasmastream/streaming"
)

// The seed's API: service types by name, the constructor table, the
// option keys, and a program's own streamer named in store.streamers.
func TestStreamingAPI(t *testing.T) {
	for name, want := range map[string]streaming.ServiceType{"file": streaming.File, " NATS ": streaming.NATS, "kafka": streaming.Unknown} {
		if got := streaming.ServiceTypeFromString(name); got != want {
			t.Errorf("ServiceTypeFromString(%q) = %v, want %v", name, got, want)
		}
	}
	if streaming.File.String() != "file" || streaming.NATS.String() != "nats" || streaming.Unknown.String() != "unknown" {
		t.Errorf("names: %v %v %v", streaming.File, streaming.NATS, streaming.Unknown)
	}
	if c, err := streaming.NewServiceConstructor("file"); c == nil || err != nil {
		t.Errorf("NewServiceConstructor(file): %v", err)
	}
	if _, err := streaming.NewServiceConstructor("kafka"); err == nil || !strings.Contains(err.Error(), `unknown streamer "kafka"`) {
		t.Errorf("NewServiceConstructor(kafka): %v", err)
	}
	if table := streaming.ServiceConstructorLookupTable(); len(table) != 2 || table[streaming.File] == nil || table[streaming.NATS] == nil {
		t.Errorf("ServiceConstructorLookupTable: %d entries", len(table))
	}
	// The option keys of the seed's file streamer, spelled as the seed.
	for key, want := range map[string]string{
		streaming.OptStoreStreamers: "store.streamers", streaming.OptStreamersFileKeys: "streamers.file.keys",
		streaming.OptStreamersFileWriteDir: "streamers.file.write_dir", streaming.OptStreamersFilePrefix: "streamers.file.prefix",
		streaming.OptStreamersFileOutputMetadata:  "streamers.file.output-metadata",
		streaming.OptStreamersFileStopNodeOnError: "streamers.file.stop-node-on-error", streaming.OptStreamersFileFsync: "streamers.file.fsync",
	} {
		if key != want {
			t.Errorf("option key %q, want %q", key, want)
		}
	}

	// A program's own streamer.
	typ, err := streaming.RegisterServiceType("sink")
	if err != nil || typ == streaming.Unknown || streaming.ServiceTypeFromString("sink") != typ || typ.String() != "sink" {
		t.Fatalf("RegisterServiceType(sink) = %v, %v", typ, err)
	}
	if _, err := streaming.RegisterServiceType("sink"); err == nil {
		t.Error("a name registered twice")
	}
	if _, err := streaming.RegisterServiceType("a.b"); err == nil {
		t.Error("a name with a dot registered")
	}
	var gotKeys [][]string
	table := streaming.ServiceConstructorLookupTable()
	table[typ] = func(opts streaming.AppOptions, keys []string, env streaming.Env) (streaming.StreamingService, error) {
		gotKeys = append(gotKeys, keys)
		return &sink{}, nil
	}
	dir := t.TempDir()
	load := func(opts streaming.Options) ([]streaming.StreamingService, error) {
		opts[streaming.OptStreamersFileWriteDir] = dir
		svcs, err := streaming.LoadStreamingServices(opts, table, streaming.Env{Node: "n"})
		for _, s := range svcs {
			s.Close()
		}
		return svcs, err
	}
	svcs, err := load(streaming.Options{streaming.OptStoreStreamers: []string{"file", "sink"}, "streamers.sink.keys": []string{"objects"}})
	if err != nil || len(svcs) != 2 || !slices.Equal(gotKeys[0], []string{"objects"}) {
		t.Fatalf("LoadStreamingServices(file, sink): %d services, sink's keys %v, %v", len(svcs), gotKeys, err)
	}
	if _, ok := svcs[0].(*streaming.FileStreamingService); !ok {
		t.Fatalf("the first service is a %T, want the file streamer", svcs[0])
	}
	if svcs, err := load(streaming.Options{streaming.OptStoreStreamers: []string{"file", "sink"}, "streamers.sink.keys": []string{}}); err != nil || len(svcs) != 1 {
		t.Fatalf("sink with keys = []: %d services, %v; want the sink off", len(svcs), err)
	}
	if _, err := load(streaming.Options{streaming.OptStoreStreamers: []string{"file", "kafka"}}); err == nil ||
		!strings.Contains(err.Error(), `unknown streamer "kafka" in store.streamers: the streamers are "file", "nats", "sink"`) {
		t.Fatalf("an unknown streamer: %v", err)
	}
	if _, err := load(streaming.Options{streaming.OptStoreStreamers: []string{"sink"}, "streamers.sink.keys": []string{"blocks"}}); err == nil ||
		!strings.Contains(err.Error(), `streamers.sink.keys: unknown store key "blocks"`) {
		t.Fatalf("an unknown store key: %v", err)
	}
	os.RemoveAll(dir)
}
