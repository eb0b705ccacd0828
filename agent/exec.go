package agent

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/ipc"
	"github.com/ncagent/ncagent/proxy"
)

// execProxy is the agent's one exec proxy (package proxy) and what its
// sessions need: a transport per CA bundle, so sessions of accounts on the
// same server share connections.
type execProxy struct {
	p *proxy.Proxy

	mu         sync.Mutex // guards transports
	transports map[[32]byte]http.RoundTripper
}

// execMinValid is how long a Bearer injected by the proxy must stay valid:
// enough for a request to reach the server and be checked.
const execMinValid = 10 * time.Second

func newExecProxy(a *Agent) *execProxy {
	return &execProxy{
		p: proxy.New(proxy.Options{
			Credentials: proxy.BrokerCredentials{Broker: a.broker, MinValid: execMinValid},
			Logger:      a.log,
		}),
		transports: map[[32]byte]http.RoundTripper{},
	}
}

// run serves the proxy on a loopback port until ctx is done.
func (x *execProxy) run(ctx context.Context) error {
	ln, err := proxy.Listen()
	if err != nil {
		return err
	}
	return x.p.Run(ctx, ln)
}

func (x *execProxy) transport(caPEM []byte) (http.RoundTripper, error) {
	key := sha256.Sum256(caPEM)
	x.mu.Lock()
	defer x.mu.Unlock()
	if t, ok := x.transports[key]; ok {
		return t, nil
	}
	t, err := proxy.NewTransport(caPEM)
	if err != nil {
		return nil, err
	}
	x.transports[key] = t
	return t, nil
}

var _ ipc.SessionBackend = (*Agent)(nil)

// OpenSession implements ipc.SessionBackend: it checks that the account
// can hand out a credential now (so that a signed-out account fails here,
// with what to do, rather than in the child) and opens a proxy session.
func (a *Agent) OpenSession(ctx context.Context, peer ipc.Peer, req ipc.SessionRequest) (ipc.SessionResponse, func(), error) {
	name, ac, err := a.account(req.Account)
	if err != nil {
		return ipc.SessionResponse{}, nil, err
	}
	acct, err := ac.Broker(name)
	if err != nil {
		return ipc.SessionResponse{}, nil, &ipc.Error{Code: ipc.CodeInternal, Account: name, Message: err.Error()}
	}
	tok, err := a.broker.Token(ctx, broker.TokenRequest{Account: name, Scopes: req.Scopes, Audience: req.Audience, MinValid: execMinValid})
	if err != nil {
		return ipc.SessionResponse{}, nil, wireError(name, err)
	}
	server := tok.Server
	if server == "" {
		server = acct.Server
	}
	srv, err := url.Parse(server)
	if err != nil || srv.Host == "" {
		return ipc.SessionResponse{}, nil, &ipc.Error{Code: ipc.CodeInvalidRequest, Account: name,
			Message: fmt.Sprintf("account %s has no server URL: run ncagent login %s --server URL", name, name)}
	}
	user := tok.Username
	if st, err := a.broker.AccountStatus(name); err == nil && user == "" {
		user = st.Username
	}
	tr, err := a.exec.transport(acct.CAPEM)
	if err != nil {
		return ipc.SessionResponse{}, nil, &ipc.Error{Code: ipc.CodeInternal, Account: name, Message: err.Error()}
	}
	select {
	case <-a.exec.p.Ready():
	case <-ctx.Done():
		return ipc.SessionResponse{}, nil, &ipc.Error{Code: ipc.CodeTimeout, Account: name, Message: "the exec proxy is not running"}
	}
	s, err := a.exec.p.Open(proxy.Spec{Account: name, Scopes: req.Scopes, Audience: req.Audience, PID: peer.PID, Command: req.Command},
		proxy.Upstream{Server: srv, Username: user, Transport: tr})
	if err != nil {
		return ipc.SessionResponse{}, nil, &ipc.Error{Code: ipc.CodeInternal, Account: name, Message: err.Error()}
	}
	return ipc.SessionResponse{ID: s.ID, Account: name, Host: s.URL(), Username: s.Username(), Password: s.Credential()}, s.Close, nil
}

// execSessions returns the open exec sessions, for Status.
func (a *Agent) execSessions() []ipc.SessionStatus {
	list := a.exec.p.Sessions()
	out := make([]ipc.SessionStatus, 0, len(list))
	for _, s := range list {
		out = append(out, ipc.SessionStatus{ID: s.ID, Account: s.Account, PID: s.PID, Command: s.Command,
			Opened: s.Opened, Requests: s.Requests, LastError: s.LastError})
	}
	return out
}
