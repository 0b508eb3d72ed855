package storewire

import "fmt"

// Limits of a CreateAndSealBatch. A batch is bounded by the frame
// (MaxRequestPayload) and by MaxBatchObjects; clients split larger ones
// into several requests.
const (
	MaxBatchObjects = MaxIDsPerRequest
	// MaxBatchMessage bounds the message of one failed object in a
	// batch reply, so that a reply of MaxBatchObjects failures fits a
	// frame.
	MaxBatchMessage = 512
	// createAndSealSize is the encoding of an empty CreateAndSeal: id,
	// two lengths, flags, digest.
	createAndSealSize = IDSize + 4 + 4 + 1 + DigestSize
	batchResultSize   = 2 + 4 // code, message length
)

// CreateAndSealBatch creates and seals many small objects in one request:
// a count, then each object laid out as a CreateAndSeal payload. The
// store handles them in order, each on its own: one that fails (its id
// exists, also earlier in the same batch; the store is full) does not
// stop the others, and none is ever visible unsealed.
type CreateAndSealBatch struct{ Objects []CreateAndSeal }

func (m CreateAndSealBatch) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U32(uint32(len(m.Objects)))
	for i := range m.Objects {
		m.Objects[i].write(&e)
	}
	return e.B
}

// Decode aliases the objects' data and metadata to p.
func (m *CreateAndSealBatch) Decode(p []byte) error {
	d := NewDec(p)
	n := d.Count("object count", createAndSealSize, MaxBatchObjects)
	m.Objects = make([]CreateAndSeal, n)
	var flags uint8
	for i := range m.Objects {
		flags |= m.Objects[i].read(d)
	}
	if err := d.Done(); err != nil {
		return err
	}
	return checkCreateAndSealFlags(flags)
}

// BatchResult is one object's outcome in a CreateAndSealBatch reply: OK,
// or the code and message an Error reply to its own CreateAndSeal would
// carry (shortened to MaxBatchMessage bytes).
type BatchResult struct {
	Code    Code
	Message string
}

// CreateAndSealBatchReply has one result per object, in request order.
type CreateAndSealBatchReply struct{ Results []BatchResult }

func (m CreateAndSealBatchReply) Append(b []byte) []byte {
	e := Enc{B: b}
	e.U32(uint32(len(m.Results)))
	for _, r := range m.Results {
		e.U16(uint16(r.Code))
		msg := r.Message
		if len(msg) > MaxBatchMessage {
			msg = msg[:MaxBatchMessage]
		}
		e.U32(uint32(len(msg)))
		e.B = append(e.B, msg...)
	}
	return e.B
}

func (m *CreateAndSealBatchReply) Decode(p []byte) error {
	d := NewDec(p)
	n := d.Count("result count", batchResultSize, MaxBatchObjects)
	m.Results = make([]BatchResult, n)
	for i := range m.Results {
		r := &m.Results[i]
		r.Code = Code(d.U16("code"))
		r.Message = string(d.Bytes32("message", MaxBatchMessage))
		if r.Code == CodeOK && r.Message != "" {
			return fmt.Errorf("%w: result %d is OK with a message", ErrMalformed, i)
		}
	}
	return d.Done()
}
