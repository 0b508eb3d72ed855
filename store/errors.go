package store

import (
	"errors"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// Conditions a caller can act on; test with errors.Is.
var (
	ErrObjectExists    = errors.New("object already exists")
	ErrObjectNotFound  = errors.New("object not found")
	ErrOutOfMemory     = errors.New("store full")
	ErrObjectNotSealed = errors.New("object not sealed")
	ErrAlreadySealed   = errors.New("object already sealed")
	ErrNotCreator      = errors.New("object created by another client")
	ErrNotReferenced   = errors.New("object not referenced by this client")
	ErrInvalidRequest  = errors.New("invalid request")
	ErrTooLarge        = errors.New("too large")
	ErrProtocolVersion = errors.New("protocol version mismatch")
	ErrClosed          = errors.New("store connection closed")
	// ErrBusy is a store-wide limit (connected clients, memory of blocked
	// Gets) reached: retry later.
	ErrBusy = errors.New("store busy")
	// ErrColdTier is the store's cold tier failing: unreachable, full, or
	// holding bytes that do not match their digest (never served).
	ErrColdTier = errors.New("cold tier failed")
	errInternal = errors.New("internal store error")
)

var codeErrors = map[storewire.Code]error{
	storewire.CodeObjectExists:    ErrObjectExists,
	storewire.CodeObjectNotFound:  ErrObjectNotFound,
	storewire.CodeOutOfMemory:     ErrOutOfMemory,
	storewire.CodeObjectNotSealed: ErrObjectNotSealed,
	storewire.CodeAlreadySealed:   ErrAlreadySealed,
	storewire.CodeNotCreator:      ErrNotCreator,
	storewire.CodeNotReferenced:   ErrNotReferenced,
	storewire.CodeInvalidRequest:  ErrInvalidRequest,
	storewire.CodeTooLarge:        ErrTooLarge,
	storewire.CodeVersion:         ErrProtocolVersion,
	storewire.CodeInternal:        errInternal,
	storewire.CodeBusy:            ErrBusy,
	storewire.CodeColdTier:        ErrColdTier,
}

// Error is a request the store refused. Its message is the store's own
// sentence (naming the object and the figures); errors.Is matches it
// against the sentinel errors above.
type Error struct {
	Code    storewire.Code
	Message string
}

func (e *Error) Error() string { return e.Message }

func (e *Error) Is(target error) bool { return codeErrors[e.Code] == target }

// codeError turns a per-object status code into an error (nil for OK).
func codeError(c storewire.Code, id ObjectID, op string) error {
	if c == storewire.CodeOK || c == storewire.CodeDeleteDeferred {
		return nil
	}
	base := codeErrors[c]
	if base == nil {
		base = errInternal
	}
	return &Error{Code: c, Message: op + " " + id.String() + ": " + base.Error()}
}
