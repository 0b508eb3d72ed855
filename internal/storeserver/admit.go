package storeserver

import (
	"fmt"
	"net"
	"time"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// refuse answers a client beyond MaxClients with a "store busy" Error
// reply to its Hello, then closes it. The answering goroutines are
// bounded (s.refusing); beyond them a client is closed without a word,
// so a flood of connections cannot make the store run out of goroutines
// or descriptors.
func (s *Server) refuse(uc *net.UnixConn, clients int) {
	s.metrics.refused()
	msg := fmt.Sprintf("store busy: %d clients connected, limit %d (plasma-store-server --max-clients); retry later", clients, s.cfg.MaxClients)
	cred := peerCred(uc)
	s.refusalLog.Do(func(suppressed int) {
		s.log.Warn("refusing a client: client limit reached", "uid", cred.Uid, "gid", cred.Gid, "pid", cred.Pid,
			"clients", clients, "limit", s.cfg.MaxClients,
			"similar_refusals_not_logged", suppressed)
	})
	select {
	case s.refusing <- struct{}{}:
	default:
		uc.Close()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.refusing }()
		defer uc.Close()
		// Read the Hello first: closing a socket with unread data could
		// make the client's write fail before it reads the reply.
		uc.SetDeadline(time.Now().Add(refuseTimeout))
		h, _, _, err := storewire.ReadFrame(uc, nil, 64)
		if err != nil {
			return
		}
		uc.Write(storewire.AppendFrame(nil, storewire.TypeError, h.ReqID,
			storewire.ErrorReply{Code: storewire.CodeBusy, Message: msg}.Append(nil)))
	}()
}

// refuseTimeout bounds the time spent telling a refused client why.
const refuseTimeout = time.Second
