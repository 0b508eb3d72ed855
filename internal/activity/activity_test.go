package activity

import (
	"errors"
	"fmt"
	"testing"

	"github.com/plasmastream/plasmastream/internal/streamwire"
)

func TestRegistryBoundsAndOutcomes(t *testing.T) {
	r := New(nil)
	a := r.Begin(In, "sync copy", "10.0.0.1:9120", 2)
	a.Expect(300)
	a.Add(100, 1)
	a.AddBytes(50)
	s := r.Snapshot()
	if len(s.Active) != 1 || s.Active[0].Bytes != 150 || s.Active[0].Total != 300 || s.Active[0].Done != 1 {
		t.Fatalf("active = %+v, want one transfer at 150/300 bytes, 1 object done", s.Active)
	}
	a.End([]streamwire.ObjectResult{{Status: streamwire.StatusOK, Bytes: 100}, {Status: streamwire.StatusNotFound, Message: "object 00: not found"}}, nil)
	s = r.Snapshot()
	if len(s.Active) != 0 || len(s.Recent) != 1 || s.Recent[0].Failed != 1 || len(s.Recent[0].Outcomes) != 2 || len(s.Errors) != 1 {
		t.Fatalf("after End: %+v", s)
	}
	// Many transfers and many objects: the bounds hold, failures first.
	for i := range Recent + 10 {
		res := make([]streamwire.ObjectResult, MaxOutcomes*2)
		for j := range res {
			res[j].Status = streamwire.StatusOK
		}
		res[len(res)-1].Status = streamwire.StatusStoreFull
		r.Begin(In, "fetch", fmt.Sprint(i), len(res)).End(res, errors.New("peer went away"))
	}
	s = r.Snapshot()
	if len(s.Recent) != Recent || len(s.Errors) != Errors {
		t.Fatalf("kept %d recent and %d errors, want %d and %d", len(s.Recent), len(s.Errors), Recent, Errors)
	}
	if got := s.Recent[0]; got.Peer != fmt.Sprint(Recent+9) || len(got.Outcomes) != MaxOutcomes || got.Outcomes[0].OK {
		t.Fatalf("newest = %+v, want the last one, %d outcomes, the failure first", got, MaxOutcomes)
	}
	// A nil registry records nothing and does not panic.
	var nr *Registry
	nr.Begin(Out, "x", "y", 1).End(nil, nil)
	nr.Error("x", "y")
	if s := nr.Snapshot(); len(s.Active)+len(s.Recent)+len(s.Errors) != 0 {
		t.Fatal("nil registry recorded something")
	}
}
