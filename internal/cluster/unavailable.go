package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// DefaultOpTimeout bounds each directory operation a caller waits for (a
// read, or the write of a change): with etcd hung or gone, the caller
// learns it within this time instead of its own, much longer, deadline.
const DefaultOpTimeout = 3 * time.Second

// UnavailableError is the error of a directory operation that etcd did not
// answer within the operation timeout (or refused, with Err saying why).
// It matches ErrUnavailable. A change that failed so is kept and written
// when etcd answers again.
type UnavailableError struct {
	Endpoints []string
	Timeout   time.Duration
	Err       error // what the etcd client said
}

func (e *UnavailableError) Error() string {
	at := strings.Join(e.Endpoints, ",")
	var refused rpctypes.EtcdError
	if errors.As(e.Err, &refused) {
		return fmt.Sprintf("cluster directory unavailable: etcd at %s failed: %v", at, refused)
	}
	return fmt.Sprintf("cluster directory unavailable: etcd at %s did not answer within %v", at, e.Timeout)
}

func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

func (e *UnavailableError) Unwrap() error { return e.Err }

// opCtx bounds one operation a caller waits for.
func (d *Directory) opCtx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, d.opTimeout)
}

// failed is the error of an operation under parent that ended with err:
// the caller's own end (cancelled, or its deadline) as it is, anything
// else as an UnavailableError.
func (d *Directory) failed(parent context.Context, what string, err error) error {
	if perr := parent.Err(); perr != nil {
		return fmt.Errorf("cluster: %s: %w", what, perr)
	}
	return d.unavailable(err)
}

func (d *Directory) unavailable(err error) *UnavailableError {
	return &UnavailableError{Endpoints: d.cli.Endpoints(), Timeout: d.opTimeout, Err: err}
}
