package cluster

import (
	"crypto/tls"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/plasmastream/plasmastream/internal/cluster/etcdlog"
)

// Dial makes an etcd client for endpoints (URLs such as
// http://127.0.0.1:2379) whose own zap logging goes to logger at error level
// only: at warn level the client logs every retried request while a member
// is down. gRPC's reconnection back-off is capped at 2 s (instead of 2
// minutes) so that the directory sees a restarted etcd quickly. It does not
// wait for a connection: the first request (Open) does. With tlsCfg the
// client speaks TLS to etcd (https endpoints) and presents its
// certificate, if tlsCfg has one.
func Dial(endpoints []string, tlsCfg *tls.Config, logger *slog.Logger) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		TLS:                  tlsCfg,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		Logger:               etcdlog.New(logger, etcdlog.DefaultLevel),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 2 * time.Second,
		})},
	})
}
