package streaming

import "errors"

// NewNATSStreamingService is the ServiceConstructor of the "nats" streamer.
func NewNATSStreamingService(opts AppOptions, keys []string, env Env) (StreamingService, error) {
	return nil, errors.New("not yet")
}

// Defaults of the NATS streamer.
const (
	DefaultNATSPrefix     = "plasma.state"
	DefaultNATSStream     = "PLASMA_STATE"
	DefaultNATSMaxPending = 256 << 20
)
