package plasmacmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// plasma dashboard: the web dashboard of a stream server, on this
// machine's loopback. A server with keys serves its dashboard over HTTPS
// to trusted client certificates only (docs/metrics.md); a browser holds
// no node key, so this command dials the server with the user's
// credentials (--key/--server-key or --tls-*) and serves the pages to the
// local browser, read-only (GET and HEAD).

// defaultDashboardListen is where plasma dashboard serves by default.
const defaultDashboardListen = "127.0.0.1:9122"

func (o *options) dashboardCmd() *cobra.Command {
	var node, listen string
	cmd := &cobra.Command{
		Use:   "dashboard --node HOST:PORT",
		Short: "Open a stream server's web dashboard through this machine, with your key",
		Long: `Serve the web dashboard of the stream server whose --http-addr is HOST:PORT
on a local address (default ` + defaultDashboardListen + `) for a browser on this machine.
With --key/--server-key or --tls-cert/--tls-key/--tls-ca it connects over HTTPS
with those credentials (the role read is enough); without, over plain HTTP.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := o.context()
			defer cancel()
			ln, err := o.dashboardListen(listen)
			if err != nil {
				return err
			}
			h, target, err := o.dashboardProxy(node)
			if err != nil {
				ln.Close()
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "dashboard of %s at http://%s/ (Ctrl-C to stop)\n", target, ln.Addr())
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
			stop := context.AfterFunc(ctx, func() { srv.Close() })
			defer stop()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "the stream server's --http-addr (HOST:PORT)")
	cmd.Flags().StringVar(&listen, "listen", defaultDashboardListen, "serve the dashboard here: a loopback address (PORT 0: any free port)")
	cmd.MarkFlagRequired("node")
	return cmd
}

// dashboardListen binds addr, which must be loopback: whoever reaches it
// reads the dashboard with this user's credentials.
func (o *options) dashboardListen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: want HOST:PORT: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("--listen %s: give a loopback address (127.0.0.1:PORT): whoever reaches it would use your credentials", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", addr, err)
	}
	return ln, nil
}

// dashboardProxy forwards GET and HEAD to the node, over HTTPS with the
// credentials if any.
func (o *options) dashboardProxy(node string) (http.Handler, string, error) {
	if _, _, err := net.SplitHostPort(node); err != nil {
		return nil, "", fmt.Errorf("--node %q: want the stream server's --http-addr, HOST:PORT: %w", node, err)
	}
	tlsCfg, err := o.creds.TLSConfig()
	if err != nil {
		return nil, "", err
	}
	target := &url.URL{Scheme: "http", Host: node}
	if tlsCfg != nil {
		target.Scheme = "https"
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: tlsCfg, ResponseHeaderTimeout: 30 * time.Second, IdleConnTimeout: time.Minute}
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
		http.Error(w, fmt.Sprintf("plasma dashboard: %s did not answer: %v", target, err), http.StatusBadGateway)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "the dashboard is read-only", http.StatusMethodNotAllowed)
			return
		}
		rp.ServeHTTP(w, r)
	}), target.String(), nil
}
