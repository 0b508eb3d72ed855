package streaming_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/streaming"
)

func samplePairs() []streaming.StoreKVPair {
	info := streaming.ObjectInfo{DataSize: 5, MetadataSize: 2, Metadata: []byte("md"), Digest: bytes.Repeat([]byte{7}, 32),
		Created: time.Unix(1, 2), Construct: 3, CreatorPID: 4}
	rm := streaming.ObjectRemoval{Reason: streaming.RemovedEvicted, Time: time.Unix(5, 0)}
	tr := streaming.Transfer{Direction: "in", Kind: "COPY", Peer: "p:1", Bytes: 9, Duration: 10, End: time.Unix(6, 0), Status: "ok",
		Objects: []streaming.TransferObject{{ID: []byte{1, 2}, Bytes: 9, Status: "ok"}}, ObjectsOmitted: 1}
	return []streaming.StoreKVPair{
		{StoreKey: "objects", Key: []byte{1}, Value: info.Append(nil)},
		{StoreKey: "objects", Delete: true, Key: []byte{2}, Value: rm.Append(nil)},
		{StoreKey: "transfers", Key: []byte{3}, Value: tr.Append(nil)},
		{StoreKey: "nodes", Key: []byte("a"), Value: []byte(`{"name":"a"}`)},
		{StoreKey: "groups", Delete: true, Key: []byte("g/a")},
	}
}

// The package's encoding decodes with the independent decoder, and back.
func TestBlockFileRoundTrip(t *testing.T) {
	pairs := samplePairs()
	data := streaming.AppendData(nil, pairs)
	got, err := decodeDataFile(data)
	if err != nil || len(got) != len(pairs) {
		t.Fatalf("independent decoder: %d pairs, %v", len(got), err)
	}
	for i, p := range pairs {
		g := got[i]
		if g.store != p.StoreKey || g.delete != p.Delete || !bytes.Equal(g.key, p.Key) || !bytes.Equal(g.value, p.Value) {
			t.Fatalf("pair %d: %+v, want %+v", i, g, p)
		}
	}
	again, err := streaming.DecodeData(data)
	if err != nil || len(again) != len(pairs) {
		t.Fatalf("DecodeData: %d pairs, %v", len(again), err)
	}
	var tr streaming.Transfer
	if err := tr.Decode(again[2].Value); err != nil || tr.Peer != "p:1" || tr.ObjectsOmitted != 1 || len(tr.Objects) != 1 || tr.Objects[0].Status != "ok" {
		t.Fatalf("transfer: %+v %v", tr, err)
	}
	m := streaming.BlockMeta{Block: 7, Node: "n", Time: time.Unix(8, 0), Start: true, Snapshot: true, Prev: 5, Pairs: 5, DataBytes: 100}
	framed := append(make([]byte, 8), m.Append(nil)...)
	framed[7] = byte(len(framed) - 8)
	back, err := streaming.DecodeMeta(framed)
	if err != nil || back != m && !(back.Time.Equal(m.Time) && back.Block == 7 && back.Lost() == 1) {
		t.Fatalf("meta: %+v %v", back, err)
	}
	if _, err := streaming.DecodeData(data[:len(data)-1]); err == nil {
		t.Fatal("a truncated data file decoded")
	}
}

// The decoders of block files and values never panic, and agree with the
// independent decoder on what it accepts.
func FuzzDecodeBlockFile(f *testing.F) {
	f.Add(streaming.AppendData(nil, samplePairs()))
	f.Add(streaming.AppendData(nil, nil))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 3, 2, 8, 1})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 9})
	for _, p := range samplePairs() {
		f.Add(p.Value)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pairs, err := streaming.DecodeData(b)
		if indep, ierr := decodeDataFile(b); ierr == nil {
			if err != nil || len(pairs) != len(indep) {
				t.Fatalf("the independent decoder reads %d pairs, DecodeData %d, %v", len(indep), len(pairs), err)
			}
			for i := range indep {
				if pairs[i].StoreKey != indep[i].store || pairs[i].Delete != indep[i].delete || !bytes.Equal(pairs[i].Key, indep[i].key) {
					t.Fatalf("pair %d differs", i)
				}
			}
		}
		if err == nil {
			re, err := streaming.DecodeData(streaming.AppendData(nil, pairs))
			if err != nil || len(re) != len(pairs) {
				t.Fatalf("re-encoded: %d pairs, %v; want %d", len(re), err, len(pairs))
			}
		}
		streaming.DecodeMeta(b)
		var o streaming.ObjectInfo
		o.Decode(b)
		var r streaming.ObjectRemoval
		r.Decode(b)
		var tr streaming.Transfer
		tr.Decode(b)
	})
}
