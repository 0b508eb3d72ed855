package streaming_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"testing"
)

// An independent decoder of the block files, written from the byte format
// alone (docs/state-streaming.md), sharing no code with the package: each
// file is an 8-byte big-endian length and that many bytes; a data file's
// bytes are records, each an unsigned varint length and a protobuf
// StoreKVPair {string store_key = 1; bool delete = 2; bytes key = 3;
// bytes value = 4}.

type kv struct {
	store  string
	delete bool
	key    []byte
	value  []byte
}

// pbField is one protobuf field: a varint value or bytes.
type pbField struct {
	num    int
	varint uint64
	bytes  []byte
}

func pbFields(b []byte) ([]pbField, error) {
	var out []pbField
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 || tag>>3 == 0 || tag>>3 > 1<<29-1 {
			return nil, fmt.Errorf("bad tag")
		}
		b = b[n:]
		f := pbField{num: int(tag >> 3)}
		switch tag & 7 {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, fmt.Errorf("bad varint")
			}
			f.varint, b = v, b[n:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return nil, fmt.Errorf("bad length")
			}
			f.bytes, b = append([]byte{}, b[n:n+int(l)]...), b[n+int(l):] // never nil: tells bytes from a varint
		default:
			return nil, fmt.Errorf("unexpected wire type %d", tag&7)
		}
		out = append(out, f)
	}
	return out, nil
}

// unframeFile checks the length header of a whole file.
func unframeFile(b []byte) ([]byte, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%d bytes: no length header", len(b))
	}
	if n := binary.BigEndian.Uint64(b); n != uint64(len(b)-8) {
		return nil, fmt.Errorf("length header %d, %d bytes follow", n, len(b)-8)
	}
	return b[8:], nil
}

func decodeDataFile(b []byte) ([]kv, error) {
	body, err := unframeFile(b)
	if err != nil {
		return nil, err
	}
	var out []kv
	for len(body) > 0 {
		l, n := binary.Uvarint(body)
		if n <= 0 || uint64(len(body)-n) < l {
			return nil, fmt.Errorf("record %d: bad length", len(out))
		}
		fs, err := pbFields(body[n : n+int(l)])
		if err != nil {
			return nil, err
		}
		body = body[n+int(l):]
		var p kv
		for _, f := range fs {
			if (f.num == 2) != (f.bytes == nil) && f.num >= 1 && f.num <= 4 {
				return nil, fmt.Errorf("record %d: field %d of the wrong wire type", len(out), f.num)
			}
			switch f.num {
			case 1:
				p.store = string(f.bytes)
			case 2:
				p.delete = f.varint != 0
			case 3:
				p.key = f.bytes
			case 4:
				p.value = f.bytes
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// meta is what the tests read of a meta record: block = 1, start = 4,
// snapshot = 5, prev = 6.
type meta struct {
	block, prev     uint64
	start, snapshot bool
}

func decodeMetaFile(b []byte) (meta, error) {
	body, err := unframeFile(b)
	if err != nil {
		return meta{}, err
	}
	fs, err := pbFields(body)
	if err != nil {
		return meta{}, err
	}
	var m meta
	for _, f := range fs {
		switch f.num {
		case 1:
			m.block = f.varint
		case 4:
			m.start = f.varint != 0
		case 5:
			m.snapshot = f.varint != 0
		case 6:
			m.prev = f.varint
		}
	}
	return m, nil
}

// fileBlock is a committed block read from a directory.
type fileBlock struct {
	meta
	pairs []kv
}

var blockName = regexp.MustCompile(`^(?:(.*)-)?block-([0-9]+)-(data|meta)$`)

// readBlockFiles decodes every block file of prefix in dir (failing the
// test on any file that is not complete) and returns the committed
// blocks (those with a meta file) in order.
func readBlockFiles(t testing.TB, dir, prefix string) []fileBlock {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := map[uint64][]kv{}
	var blocks []fileBlock
	for _, e := range ents {
		m := blockName.FindStringSubmatch(e.Name())
		if m == nil || m[1] != prefix {
			continue
		}
		n, _ := strconv.ParseUint(m[2], 10, 64)
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if m[3] == "data" {
			if data[n], err = decodeDataFile(b); err != nil {
				t.Fatalf("%s: incomplete or malformed: %v", e.Name(), err)
			}
			continue
		}
		mt, err := decodeMetaFile(b)
		if err != nil {
			t.Fatalf("%s: incomplete or malformed: %v", e.Name(), err)
		}
		if mt.block != n {
			t.Fatalf("%s holds the meta of block %d", e.Name(), mt.block)
		}
		blocks = append(blocks, fileBlock{meta: mt})
	}
	for i := range blocks {
		p, ok := data[blocks[i].block]
		if !ok {
			t.Fatalf("block %d has a meta file (its commit marker) but no data file", blocks[i].block)
		}
		blocks[i].pairs = p
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i].block < blocks[j].block })
	return blocks
}

func hexID2(b []byte) string { return fmt.Sprintf("%x", b) }
