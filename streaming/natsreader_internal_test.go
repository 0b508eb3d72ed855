package streaming

import (
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
)

// The NATS reader rebuilds blocks from messages anyone could publish on
// the stream's subjects: whatever their headers and bodies, it returns a
// block or an error, never panics, and a block it returns has a meta
// record numbered as its header says.
func FuzzNATSAssembler(f *testing.F) {
	meta := BlockMeta{Block: 2, Node: "n", Pairs: 1}
	f.Add("2", "1", AppendData(nil, []StoreKVPair{{StoreKey: "objects", Key: []byte{1}}}), frame(meta.Append(nil)))
	f.Add("2", "-1", []byte{}, frame(meta.Append(nil)))
	f.Add("x", "", []byte{0, 0, 0, 0, 0, 0, 0, 1}, []byte{})
	f.Fuzz(func(t *testing.T, block, parts string, data, commit []byte) {
		var a natsAssembler
		h := nats.Header{}
		h.Set(hdrBlock, block)
		if _, err := a.add("p.n", "p.n.objects", h, data); err != nil {
			return
		}
		h.Set(hdrParts, parts)
		rb, err := a.add("p.n", "p.n."+natsCommitToken, h, commit)
		if n, perr := strconv.ParseUint(block, 10, 64); err == nil && rb != nil && (perr != nil || rb.Number != n || rb.Meta == nil || rb.Meta.Block != n) {
			t.Fatalf("block %d from header %q, meta %+v", rb.Number, block, rb.Meta)
		}
	})
}
