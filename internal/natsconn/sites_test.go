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

// Two embedded servers joined as one NATS cluster by --nats-config (each
// file's cluster block routes to the other): a message published on one
// reaches a subscriber on the other, and JetStream answers on both.
func TestSitesJoinedAsCluster(t *testing.T) {
	routes := []int{freePort(t), freePort(t)}
	conns := make([]*Conn, 2)
	errs := make(chan error, 2)
	for i, name := range []string{"n1", "n2"} {
		conf := filepath.Join(t.TempDir(), name+".conf")
		os.WriteFile(conf, []byte(fmt.Sprintf("server_name: %s\ncluster {\n  name: plasma\n  listen: 127.0.0.1:%d\n  routes: [ nats-route://127.0.0.1:%d ]\n}\n",
			name, routes[i], routes[1-i])), 0o600)
		go func() {
			c, err := Connect(context.Background(), Config{Servers: Embedded, Listen: "127.0.0.1:0", Dir: t.TempDir(), Name: name, Sites: Sites{ConfigFile: conf}})
			conns[i] = c
			errs <- err
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range conns {
		defer c.Close()
	}
	crosses(t, conns[0].NC, conns[1].NC, "east")
	crosses(t, conns[1].NC, conns[0].NC, "west")
	for _, c := range conns {
		js, err := c.NC.JetStream()
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := js.AccountInfo()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: JetStream: %v", c.ClientURL(), err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
