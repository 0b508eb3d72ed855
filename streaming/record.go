package streaming

import (
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// StoreKVPair is one change of one store: the record of ADR-038's
// StoreKVPair (store_key = 1, delete = 2, key = 3, value = 4), encoded by
// hand so that any ADR-038 decoder reads it (docs/state-streaming.proto).
type StoreKVPair struct {
	StoreKey string
	Delete   bool
	Key      []byte
	Value    []byte
}

// Field numbers of StoreKVPair.
const (
	fieldStoreKey protowire.Number = 1
	fieldDelete   protowire.Number = 2
	fieldKey      protowire.Number = 3
	fieldValue    protowire.Number = 4
)

// Append appends p's protobuf encoding (without a length prefix).
func (p *StoreKVPair) Append(b []byte) []byte {
	if p.StoreKey != "" {
		b = protowire.AppendTag(b, fieldStoreKey, protowire.BytesType)
		b = protowire.AppendString(b, p.StoreKey)
	}
	if p.Delete {
		b = protowire.AppendTag(b, fieldDelete, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	if len(p.Key) > 0 {
		b = protowire.AppendTag(b, fieldKey, protowire.BytesType)
		b = protowire.AppendBytes(b, p.Key)
	}
	if len(p.Value) > 0 {
		b = protowire.AppendTag(b, fieldValue, protowire.BytesType)
		b = protowire.AppendBytes(b, p.Value)
	}
	return b
}

// Size is the length of p's encoding.
func (p *StoreKVPair) Size() int {
	n := 0
	if p.StoreKey != "" {
		n += protowire.SizeTag(fieldStoreKey) + protowire.SizeBytes(len(p.StoreKey))
	}
	if p.Delete {
		n += protowire.SizeTag(fieldDelete) + 1
	}
	if len(p.Key) > 0 {
		n += protowire.SizeTag(fieldKey) + protowire.SizeBytes(len(p.Key))
	}
	if len(p.Value) > 0 {
		n += protowire.SizeTag(fieldValue) + protowire.SizeBytes(len(p.Value))
	}
	return n
}

// Decode reads p from one record; unknown fields are skipped (protobuf's
// rule), so that later versions may add fields.
func (p *StoreKVPair) Decode(b []byte) error {
	*p = StoreKVPair{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
		want := protowire.BytesType
		switch num {
		case fieldStoreKey:
			p.StoreKey = string(bs)
		case fieldDelete:
			want = protowire.VarintType
			p.Delete = v != 0
		case fieldKey:
			p.Key = bs
		case fieldValue:
			p.Value = bs
		default:
			return nil // a field of a later version
		}
		if typ != want {
			return fmt.Errorf("field %d has wire type %d, want %d", num, typ, want)
		}
		return nil
	})
}

// eachField calls fn for every field of the protobuf message b: v is a
// varint or fixed value, bs the bytes of a length-delimited one (aliasing
// b).
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("protobuf tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var v uint64
		var bs []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var v32 uint32
			v32, n = protowire.ConsumeFixed32(b)
			v = uint64(v32)
		case protowire.BytesType:
			bs, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("protobuf field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v, bs); err != nil {
			return err
		}
	}
	return nil
}

// Errors of decoding block files.
var (
	// ErrTruncated: a file is shorter than its length header says (a
	// file written in place and cut off: never one this package wrote).
	ErrTruncated = errors.New("streaming: truncated block file")
	// ErrCorrupt: the bytes are not a block file.
	ErrCorrupt = errors.New("streaming: malformed block file")
)

// lengthHeader is the 8-byte big-endian length every block file starts
// with (as Cosmos's file streamer writes it).
const lengthHeader = 8

// AppendData appends the contents of a data file: the length header, then
// each pair prefixed with its length as an unsigned varint.
func AppendData(b []byte, pairs []StoreKVPair) []byte {
	start := len(b)
	b = append(b, make([]byte, lengthHeader)...)
	for i := range pairs {
		b = protowire.AppendVarint(b, uint64(pairs[i].Size()))
		b = pairs[i].Append(b)
	}
	binary.BigEndian.PutUint64(b[start:], uint64(len(b)-start-lengthHeader))
	return b
}

// DecodeData decodes a data file's contents. The pairs alias b.
func DecodeData(b []byte) ([]StoreKVPair, error) {
	body, err := unframe(b)
	if err != nil {
		return nil, err
	}
	var pairs []StoreKVPair
	for len(body) > 0 {
		rec, n := protowire.ConsumeBytes(body)
		if n < 0 {
			return nil, fmt.Errorf("%w: record %d: %v", ErrCorrupt, len(pairs), protowire.ParseError(n))
		}
		var p StoreKVPair
		if err := p.Decode(rec); err != nil {
			return nil, fmt.Errorf("%w: record %d: %v", ErrCorrupt, len(pairs), err)
		}
		pairs = append(pairs, p)
		body = body[n:]
	}
	return pairs, nil
}

// unframe checks the length header and returns what follows it.
func unframe(b []byte) ([]byte, error) {
	if len(b) < lengthHeader {
		return nil, fmt.Errorf("%w: %d bytes, less than the 8-byte length header", ErrTruncated, len(b))
	}
	n := binary.BigEndian.Uint64(b)
	rest := b[lengthHeader:]
	switch {
	case n > uint64(len(rest)):
		return nil, fmt.Errorf("%w: header says %d bytes, %d follow", ErrTruncated, n, len(rest))
	case n < uint64(len(rest)):
		return nil, fmt.Errorf("%w: header says %d bytes, %d follow", ErrCorrupt, n, len(rest))
	}
	return rest, nil
}

// frame prefixes body with its length header.
func frame(body []byte) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, lengthHeader+len(body)), uint64(len(body)))
	return append(b, body...)
}
