package store_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/store"
)

// The JSON of ObjectInfo and Event (plasma list/watch --json, the Python
// tests) is what it was when ids and digests were hex strings in Go: ids
// as 40 hex digits, a digest as 64, left out when unknown.
func TestInfoAndEventJSON(t *testing.T) {
	id := store.ObjectID{1, 2, 3, 19: 0xff}
	t0 := time.Unix(1700000000, 5).UTC()
	var digest store.Digest
	digest[0], digest[31] = 0xab, 0xcd
	const (
		idHex     = `"id":"01020300000000000000000000000000000000ff"`
		digestHex = `"digest":"ab` + "000000000000000000000000000000000000000000000000000000000000" + `cd"`
		infoHead  = `{` + idHex + `,"data_size":6,"metadata_size":1,"ref_count":2,"state":"sealed","create_time":"2023-11-14T22:13:20.000000005Z","construct_duration":7,"creator_pid":9,"delete_pending":false,"last_use":"2023-11-14T22:13:20.000000005Z","offset":128`
		eventHead = `{"event":"sealed",` + idHex + `,"data_size":6,"metadata_size":1,"time":"2023-11-14T22:13:20.000000005Z"`
	)
	info := store.ObjectInfo{ID: id, DataSize: 6, MetadataSize: 1, RefCount: 2, State: store.StateSealed,
		CreateTime: t0, ConstructDuration: 7, CreatorPID: 9, LastUse: t0, Offset: 128}
	ev := store.Event{Kind: store.EventSealed, ID: id, DataSize: 6, MetadataSize: 1, Time: t0}
	infoD, evD := info, ev
	infoD.Digest, evD.Digest = digest, digest
	for _, tc := range []struct {
		v    any
		want string
		back func([]byte) (any, error) // decodes into a fresh value of v's type
	}{
		{info, infoHead + `}`, decode[store.ObjectInfo]},
		{infoD, infoHead + `,` + digestHex + `}`, decode[store.ObjectInfo]},
		{ev, eventHead + `}`, decode[store.Event]},
		{evD, eventHead + `,` + digestHex + `}`, decode[store.Event]},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil || string(b) != tc.want {
			t.Fatalf("JSON of %+v:\n got %s (%v)\nwant %s", tc.v, b, err, tc.want)
		}
		if back, err := tc.back(b); err != nil || back != tc.v {
			t.Fatalf("JSON %s decodes to %+v (%v), want %+v", b, back, err, tc.v)
		}
	}
}

func decode[T any](b []byte) (any, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}
