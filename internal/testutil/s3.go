package testutil

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 is a real S3 server for tests: versitygw over a posix directory on
// loopback, installed once outside the clone by scripts/versitygw.sh.
type S3 struct {
	t        testing.TB
	Endpoint string // http://127.0.0.1:port
	Bucket   string
	dir      string
	cmd      *exec.Cmd
	exited   <-chan struct{}
}

// Credentials of the test server; StartS3 puts them in the environment,
// which is where the store and plasma read them.
const (
	S3AccessKey = "plasmatest"
	S3SecretKey = "plasmatestsecret"
)

// VersityGW is the path of the versitygw binary: $PLASMA_TOOLS_BIN or
// ~/.cache/plasma-tools/bin. A test that needs it fails (never skips)
// when it is missing.
func VersityGW(t testing.TB) string {
	t.Helper()
	return tool(t, "versitygw", "the S3 server of the cold-tier tests", "scripts/versitygw.sh")
}

// NATSCLI is the path of the standard NATS tool, natscli's nats, installed
// as versitygw is. A test that needs it fails (never skips) when it is
// missing.
func NATSCLI(t testing.TB) string {
	t.Helper()
	return tool(t, "nats", "the NATS command-line tool of the bridge's tests", "scripts/natscli.sh")
}

// tool is the path of a tool the tests need that a script installs into
// $PLASMA_TOOLS_BIN or ~/.cache/plasma-tools/bin, outside the clone.
func tool(t testing.TB, name, what, script string) string {
	t.Helper()
	dir := os.Getenv("PLASMA_TOOLS_BIN")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "plasma-tools", "bin")
	}
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s, %s, is not installed at %s: run %s (scripts/test.sh does)", name, what, bin, script)
	}
	return bin
}

// StartS3 starts an S3 server with one empty bucket, sets the AWS_*
// environment (credentials, endpoint, region) for this test, and stops
// the server at its end.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	port := FreePort(t, "127.0.0.1")
	s := &S3{t: t, Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), Bucket: "cold", dir: ShortDir(t)}
	t.Setenv("AWS_ACCESS_KEY_ID", S3AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", S3SecretKey)
	t.Setenv("AWS_ENDPOINT_URL", s.Endpoint)
	t.Setenv("AWS_REGION", "us-east-1")
	s.Start()
	c := s.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return s
}

// Client is a plain S3 client of the server.
func (s *S3) Client() *minio.Client {
	c, err := minio.New(s.Endpoint[len("http://"):], &minio.Options{
		Creds: credentials.NewStaticV4(S3AccessKey, S3SecretKey, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// URL is the cold-tier URL of prefix in the bucket.
func (s *S3) URL(prefix string) string { return "s3://" + s.Bucket + "/" + prefix }

// Start (re)starts the server on its port and directory and waits until
// it accepts connections.
func (s *S3) Start() {
	s.t.Helper()
	addr := s.Endpoint[len("http://"):]
	s.cmd = exec.Command(VersityGW(s.t), "--port", addr, "--access", S3AccessKey, "--secret", S3SecretKey, "posix", s.dir)
	s.cmd.Stderr = &prefixWriter{t: s.t, prefix: "versitygw: "}
	s.exited = Run(s.t, s.cmd)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		select {
		case <-s.exited:
			s.t.Fatalf("versitygw exited before listening on %s", addr)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("versitygw not listening on %s after 20 s", addr)
		}
	}
}

// Stop kills the server (as a crash or a cut link would) and waits for
// its end.
func (s *S3) Stop() {
	s.cmd.Process.Kill()
	<-s.exited
}

// File is where the server keeps the object key of the bucket (its posix
// backend stores each object as a file): tests damage it there.
func (s *S3) File(key string) string { return filepath.Join(s.dir, s.Bucket, filepath.FromSlash(key)) }

// Pause stops the server process (SIGSTOP): connections are accepted by
// the kernel but never answered, as with a hung service. Resume ends it.
func (s *S3) Pause() { s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume lets a paused server go on (SIGCONT).
func (s *S3) Resume() { s.cmd.Process.Signal(syscall.SIGCONT) }
