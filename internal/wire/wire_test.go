package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestParseHeader(t *testing.T) {
	var b [HeaderSize]byte
	PutHeader(b[:], Header{Length: 100, Type: 6, ReqID: 7})
	if h, err := ParseHeader(b[:], 100); err != nil || h.Length != 100 || h.Type != 6 || h.ReqID != 7 {
		t.Fatalf("%+v %v", h, err)
	}
	if _, err := ParseHeader(b[:], 99); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized frame: %v", err)
	}
	PutHeader(b[:], Header{Length: 1, Flags: 1})
	if _, err := ParseHeader(b[:], 100); err == nil {
		t.Fatal("non-zero flags accepted")
	}
}

func TestReadFrame(t *testing.T) {
	f := AppendFrame(nil, 3, 9, []byte("payload"))
	h, p, _, err := ReadFrame(bytes.NewReader(f), nil, 100)
	if err != nil || h.Type != 3 || h.ReqID != 9 || string(p) != "payload" {
		t.Fatalf("%+v %q %v", h, p, err)
	}
	if _, _, _, err := ReadFrame(bytes.NewReader(f[:len(f)-1]), nil, 100); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated payload: %v", err)
	}
}

func TestDecoder(t *testing.T) {
	e := Enc{}
	e.U8(1)
	e.U16(2)
	e.U32(3)
	e.U64(4)
	e.Bytes32([]byte("ab"))
	d := NewDec(e.B)
	if d.U8("a") != 1 || d.U16("b") != 2 || d.U32("c") != 3 || d.U64("d") != 4 || string(d.Bytes32("e", 2)) != "ab" || d.Done() != nil {
		t.Fatal("round trip")
	}
	d = NewDec(e.B)
	d.U64("too much")
	d.U64("too much")
	if err := d.Done(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short read: %v", err)
	}
	if err := NewDec(append(e.B, 0)).Done(); err == nil {
		t.Fatal("trailing bytes accepted")
	}
	d = NewDec(e.B[15:])
	if d.Bytes32("e", 1); d.Done() == nil {
		t.Fatal("length above max accepted")
	}
	e = Enc{}
	e.U32(1 << 20)
	if d := NewDec(e.B); d.Count("n", 20, 1<<30) != 0 || d.Done() == nil {
		t.Fatal("count beyond the input accepted")
	}
}
