package streamserver

import (
	"context"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plasmastream/plasmastream/internal/cliutil"
	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/store"
)

// The dashboard on --http-addr: a page of our own (dashboard/, embedded)
// that polls /api/state once a second. The state is a list of sections,
// each made by one function of the server; the page draws the sections
// it knows with their own layout and any other one generically (a table
// for a list of records, a list of fields for a record), so that a new
// part of the server shows up by adding one entry to sections.
//
// It is read-only and shows what a caller with the read role can learn
// through the stream protocol (STAT, NODES, LOCATE, and what its own
// requests report); with keys, httpAuth requires that role.

//go:embed dashboard
var dashboardFiles embed.FS

// section is one part of the dashboard's state.
type section struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	Data  any    `json:"data,omitempty"`
	Error string `json:"error,omitempty"`
}

// sectionSource makes one section of the state.
type sectionSource struct {
	name, title string
	make        func(context.Context) (any, error)
}

// sections are the dashboard's sections, in page order: add one here.
func (s *Server) sections() []sectionSource {
	secs := []sectionSource{
		{"node", "Node", s.nodeSection},
		{"cluster", "Cluster", s.clusterSection},
		{"history", "Throughput and store usage", func(context.Context) (any, error) { return s.history.snapshot(), nil }},
		{"transfers", "Transfers", func(context.Context) (any, error) { return s.activity.Snapshot(), nil }},
	}
	if s.state != nil {
		secs = append(secs, sectionSource{"streaming", "State streaming", func(context.Context) (any, error) { return s.state.view(), nil }})
	}
	if b := s.bridgeView.Load(); b != nil {
		secs = append(secs, sectionSource{"bridge", "NATS bridge", func(context.Context) (any, error) { return b.Report(""), nil }})
	}
	return secs
}

// dashboardTimeout bounds the making of one state (a store or etcd that
// does not answer shows as that section's error).
const dashboardTimeout = 2 * time.Second

func (s *Server) apiState(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), dashboardTimeout)
	defer cancel()
	secs := s.sections()
	out := make([]section, len(secs))
	var wg sync.WaitGroup
	for i, sec := range secs {
		wg.Go(func() {
			out[i] = section{Name: sec.name, Title: sec.title}
			data, err := sec.make(ctx)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].Data = data
		})
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, map[string]any{"time": time.Now().UnixMilli(), "sections": out})
}

// nodeView is the node section.
type nodeView struct {
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	Started     time.Time         `json:"started"`
	Uptime      float64           `json:"uptime_seconds"`
	Connections int64             `json:"connections"`
	StoreSocket string            `json:"store_socket"`
	StoreUp     bool              `json:"store_up"`
	Store       *store.Stats      `json:"store,omitempty"`
	Counters    map[string]uint64 `json:"counters"`
	Clustered   bool              `json:"clustered"`
	Groups      []string          `json:"groups,omitempty"`
	Secured     string            `json:"secured"`
}

func (s *Server) nodeSection(ctx context.Context) (any, error) {
	st := &s.stats
	v := nodeView{Name: s.cfg.NodeName, Version: cliutil.Version, Started: s.start, Uptime: time.Since(s.start).Seconds(),
		Connections: s.active.Load(), StoreSocket: s.cfg.PlasmaSocket, Clustered: s.node.Clustered(), Secured: "none",
		Counters: map[string]uint64{
			"bytes_sent": st.BytesSent.Load(), "objects_sent": st.ObjectsSent.Load(),
			"bytes_received": st.BytesReceived.Load(), "objects_received": st.ObjectsReceived.Load(),
			"integrity_failures": st.IntegrityFailures.Load(), "corrupt_groups": st.CorruptGroups.Load(),
		}}
	switch {
	case s.ca != nil:
		v.Secured = "CA-issued certificates"
	case s.trust != nil:
		v.Secured = "pinned keys"
	}
	if n := s.joined.Load(); n != nil && n.Clustered() {
		v.Groups = s.cfg.Cluster.Groups
	}
	if sc, err := s.useStore(); err == nil {
		stats, err := sc.st.Stats(ctx)
		sc.release()
		if err == nil {
			v.StoreUp, v.Store = true, &stats
		}
	}
	return v, nil
}

// nodeLife is a node the dashboard has seen registered: alive while it
// is, dead once its registration is gone (its lease expired).
type nodeLife struct {
	Name     string    `json:"name"`
	Address  string    `json:"address"`
	Groups   []string  `json:"groups"`
	Version  string    `json:"version"`
	Started  time.Time `json:"started"`
	Alive    bool      `json:"alive"`
	LastSeen time.Time `json:"last_seen"`
	Self     bool      `json:"self"`
}

// maxSeenNodes bounds the nodes remembered (the dead ones longest gone
// are forgotten first).
const maxSeenNodes = 1024

// seenNodes remembers the nodes of earlier states.
type seenNodes struct {
	mu    sync.Mutex
	nodes map[string]*nodeLife
}

func (s *Server) clusterSection(ctx context.Context) (any, error) {
	n := s.joined.Load()
	if n == nil || !n.Clustered() {
		return map[string]any{"clustered": false}, nil
	}
	live, err := n.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	sn := &s.seen
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.nodes == nil {
		sn.nodes = map[string]*nodeLife{}
	}
	for _, l := range sn.nodes {
		l.Alive = false
	}
	for _, x := range live {
		sn.nodes[x.Name] = &nodeLife{Name: x.Name, Address: x.Address, Groups: x.Groups, Version: x.Version, Started: x.Started,
			Alive: true, LastSeen: now, Self: x.Name == s.cfg.NodeName}
	}
	out := make([]nodeLife, 0, len(sn.nodes))
	for _, l := range sn.nodes {
		out = append(out, *l)
	}
	slices.SortFunc(out, func(a, b nodeLife) int { return strings.Compare(a.Name, b.Name) })
	if len(out) > maxSeenNodes {
		dead := slices.DeleteFunc(slices.Clone(out), func(l nodeLife) bool { return l.Alive })
		slices.SortFunc(dead, func(a, b nodeLife) int { return a.LastSeen.Compare(b.LastSeen) })
		for _, l := range dead[:len(out)-maxSeenNodes] {
			delete(sn.nodes, l.Name)
		}
	}
	return map[string]any{"clustered": true, "nodes": out}, nil
}

// apiLocate answers /api/locate?id=HEX: the holders of an object and its
// cold copies, as LOCATE with LocateCold does.
func (s *Server) apiLocate(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("id"))
	b, err := hex.DecodeString(q)
	if err != nil || len(b) != len(streamwire.ID{}) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "give an object id of 40 hex digits"})
		return
	}
	n := s.joined.Load()
	if n == nil || !n.Clustered() {
		writeJSON(w, http.StatusConflict, map[string]string{"error": s.cfg.NodeName + " is not in a cluster: there is nothing to locate"})
		return
	}
	id := streamwire.ID(b)
	ctx, cancel := context.WithTimeout(r.Context(), dashboardTimeout)
	defer cancel()
	ps, err := n.Placements(ctx, []streamwire.ID{id})
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the cluster directory did not answer: " + err.Error()})
		return
	}
	p := ps[id]
	writeJSON(w, http.StatusOK, map[string]any{"id": id.String(), "holders": p.Holders, "cold": p.Cold})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// dashboardHandler serves the page and its files.
func dashboardHandler() http.Handler {
	sub, _ := fs.Sub(dashboardFiles, "dashboard")
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Our own files only: nothing from elsewhere may run in the page.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}

// readOnly refuses every method but GET and HEAD.
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the dashboard is read-only", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}
