package streaming

import (
	"github.com/spf13/pflag"
)

// DefineFlags defines a flag for every option key of the built-in
// streamers, named as the key (--store.streamers,
// --streamers.file.write_dir, ...: the TOML file's [store] and
// [streamers.file] tables set the same), with its default, and returns
// the AppOptions that reads them once parsed.
func DefineFlags(fs *pflag.FlagSet) AppOptions {
	fs.StringSlice(OptStoreStreamers, nil, `state streamers to run: "file", "nats" (none: state streaming off)`)
	fs.Duration(OptStoreBlockInterval, DefaultBlockInterval, "a state block closes this long after its first change")
	fs.Int(OptStoreBlockChanges, DefaultBlockChanges, "or when it holds this many changes")

	fs.StringSlice(OptStreamersFileKeys, []string{"*"}, `store keys the file streamer writes: objects, transfers, locations, nodes, groups ("*": all; empty: off)`)
	fs.String(OptStreamersFileWriteDir, "", "directory the file streamer writes blocks to (created if missing)")
	fs.String(OptStreamersFilePrefix, "", "prefix of the block file names ({prefix}-block-{N}-data)")
	fs.Bool(OptStreamersFileOutputMetadata, true, "also write each block's meta file, its commit marker")
	fs.Bool(OptStreamersFileStopNodeOnError, true, "stop the node when a block cannot be written (false: count it lost and go on)")
	fs.Bool(OptStreamersFileFsync, true, "fsync each block file and the directory before it counts as written")
	fs.Int64(OptStreamersFileMaxPending, DefaultFileMaxPending, "bytes of blocks waiting to be written beyond which the oldest are dropped (counted lost)")

	fs.StringSlice(OptStreamersNATSKeys, []string{"*"}, `store keys the NATS streamer publishes ("*": all; empty: off)`)
	fs.String(OptStreamersNATSPrefix, DefaultNATSPrefix, "subject prefix: blocks go to PREFIX.NODE.STORE_KEY")
	fs.String(OptStreamersNATSStream, DefaultNATSStream, "JetStream stream of the blocks (created if missing)")
	fs.Bool(OptStreamersNATSStopNodeOnError, false, "stop the node when a block cannot be published (false: hold blocks and publish them when NATS returns)")
	fs.Int64(OptStreamersNATSMaxPending, DefaultNATSMaxPending, "bytes of blocks held while NATS is unreachable beyond which the oldest are dropped (counted lost)")
	return flagOptions{fs}
}

type flagOptions struct{ fs *pflag.FlagSet }

func (o flagOptions) Get(key string) any {
	f := o.fs.Lookup(key)
	if f == nil {
		return nil
	}
	var v any
	var err error
	switch f.Value.Type() {
	case "stringSlice":
		v, err = o.fs.GetStringSlice(key)
	case "bool":
		v, err = o.fs.GetBool(key)
	case "duration":
		v, err = o.fs.GetDuration(key)
	case "int":
		v, err = o.fs.GetInt(key)
	case "int64":
		v, err = o.fs.GetInt64(key)
	default:
		v = f.Value.String()
	}
	if err != nil {
		return nil
	}
	return v
}
