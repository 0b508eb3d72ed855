// Package clustertest starts etcd for tests of any package: an embedded
// member (StartEmbedded) or a real multi-member cluster of the etcd binary
// (StartExternalCluster; Debian's etcd-server package provides /usr/bin/etcd).
// Everything listens on free loopback ports, keeps its data in t.TempDir()
// and is stopped by t.Cleanup.
package clustertest
