// Package activity keeps, in memory and bounded, what a stream server's
// transfers are doing: the transfers under way with their bytes so far,
// the last finished ones with the outcome of each object, and the last
// errors. The dashboard reads it; nothing else depends on it.
//
// Invariants: at most Recent finished transfers and Errors errors are
// kept (the oldest go first), a finished transfer keeps at most
// MaxOutcomes per-object outcomes (failures first), and every method is
// safe on a nil *Registry and a nil *Transfer (recording is then off), so
// callers never test for it.
package activity
