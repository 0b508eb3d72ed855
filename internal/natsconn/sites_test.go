package natsconn

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Two sites' embedded servers joined as NATS leaf nodes, one by
// --nats-leaf-listen, the other from a nats-server configuration file
// (--nats-config): a message published at either site reaches a
// subscriber at the other, and each keeps its own JetStream.
func TestSitesJoinedByLeafNodes(t *testing.T) {
	leaf := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	hub, err := Connect(context.Background(), Config{Servers: Embedded, Listen: "127.0.0.1:0", Dir: t.TempDir(), Name: "hub", Sites: Sites{LeafListen: leaf}})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	conf := filepath.Join(t.TempDir(), "spoke.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("leafnodes {\n  remotes = [ { url: \"nats-leaf://%s\" } ]\n}\n", leaf)), 0o600)
	spoke, err := Connect(context.Background(), Config{Servers: Embedded, Listen: "127.0.0.1:0", Dir: t.TempDir(), Name: "spoke", Sites: Sites{ConfigFile: conf}})
	if err != nil {
		t.Fatal(err)
	}
	defer spoke.Close()
	crosses(t, hub.NC, spoke.NC, "up")
	crosses(t, spoke.NC, hub.NC, "down")
	for _, c := range []*Conn{hub, spoke} {
		js, err := c.NC.JetStream()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.AccountInfo(); err != nil {
			t.Errorf("%s: JetStream: %v", c.ClientURL(), err)
		}
	}
}

// crosses waits until a message published on from reaches a subscriber on
// to.
func crosses(t *testing.T, from, to *nats.Conn, subject string) {
	t.Helper()
	sub, err := to.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	to.Flush()
	deadline := time.Now().Add(30 * time.Second)
	for {
		from.Publish(subject, []byte("hello"))
		if _, err := sub.NextMsg(100 * time.Millisecond); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message on %s crossed between the sites", subject)
		}
	}
}

func TestSitesErrors(t *testing.T) {
	for _, c := range []struct {
		sites Sites
		want  string
	}{
		{Sites{Leafs: []string{"::bad"}}, "--nats-leaf"},
		{Sites{LeafListen: "127.0.0.1:0"}, "--nats-leaf-listen"},
		{Sites{ConfigFile: "/no/such.conf"}, "--nats-config"},
	} {
		_, err := Connect(context.Background(), Config{Servers: Embedded, Listen: "127.0.0.1:0", Dir: t.TempDir(), Name: "x", Sites: c.sites})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v; want one naming %s", c.sites, err, c.want)
		}
	}
}
