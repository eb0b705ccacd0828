package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
)

// rewrite points the outgoing request at the session's upstream. Rewrite
// (unlike Director) runs after ReverseProxy removed the hop-by-hop headers
// and adds no X-Forwarded-* header.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	info := pr.In.Context().Value(infoKey{}).(*reqInfo)
	up := info.s.up.Server
	pr.Out.URL.Scheme = up.Scheme
	pr.Out.URL.Host = up.Host
	pr.Out.Host = "" // the upstream's host, from URL
	h := pr.Out.Header
	h.Del("Authorization") // the session credential; injector adds the real one
	h.Del("Cookie")
	// RFC 4918 section 10.3: Destination is an absolute URI (or an
	// absolute path, kept as it is). It names the proxy; the upstream
	// needs its own origin there.
	// https://www.rfc-editor.org/rfc/rfc4918#section-10.3
	self := proxyOrigin(p.host())
	if d := h.Get("Destination"); d != "" {
		h.Set("Destination", p.swapOrigin(d, self, up))
	}
	// RFC 4918 section 10.4.2: a tagged list in If names its resource by
	// URL in angle brackets ("<http://host/path> (<locktoken>)"); an
	// absolute one names the proxy too.
	// https://www.rfc-editor.org/rfc/rfc4918#section-10.4.2
	if v := h.Get("If"); strings.Contains(v, "<"+self.String()+"/") {
		origin := &url.URL{Scheme: up.Scheme, Host: up.Host}
		h.Set("If", strings.ReplaceAll(v, "<"+self.String()+"/", "<"+origin.String()+"/"))
	}
}

// modifyResponse rewrites the upstream's origin to the proxy's in the
// headers that carry URLs, drops cookies, and records the status.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	info := resp.Request.Context().Value(infoKey{}).(*reqInfo)
	info.status = resp.StatusCode
	up := info.s.up.Server
	us := &url.URL{Scheme: up.Scheme, Host: up.Host}
	self := proxyOrigin(p.host())
	for _, k := range []string{"Location", "Content-Location"} {
		if v := resp.Header.Get(k); v != "" {
			resp.Header.Set(k, p.swapOrigin(v, us, self))
		}
	}
	resp.Header.Del("Set-Cookie")
	if resp.StatusCode == http.StatusUnauthorized {
		info.s.fail("the server answered 401 Unauthorized")
	}
	return nil
}

// errorHandler answers 502 when the upstream cannot be reached.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	info := r.Context().Value(infoKey{}).(*reqInfo)
	info.err = err
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		info.status = 499 // the client went away; nobody reads the answer
		return
	}
	info.status = http.StatusBadGateway
	info.s.fail(err.Error())
	http.Error(w, "ncagent: "+err.Error(), http.StatusBadGateway)
}

// proxyOrigin is the proxy's own origin, http://host:port.
func proxyOrigin(host string) *url.URL { return &url.URL{Scheme: "http", Host: host} }

// swapOrigin returns raw with the origin from replaced by to when raw is
// an absolute URL of origin from; anything else is returned unchanged.
func (p *Proxy) swapOrigin(raw string, from, to *url.URL) string {
	u, err := url.Parse(raw)
	if err != nil || !strings.EqualFold(u.Scheme, from.Scheme) || !strings.EqualFold(u.Host, from.Host) {
		return raw
	}
	u.Scheme, u.Host = to.Scheme, to.Host
	return u.String()
}

// injector is the ReverseProxy's transport: it adds the account's
// Authorization and sends the request with the session's transport,
// retrying once with a new token after a 401 on a Bearer.
type injector struct{ p *Proxy }

func (t *injector) RoundTrip(req *http.Request) (*http.Response, error) {
	info := req.Context().Value(infoKey{}).(*reqInfo)
	s := info.s
	creds := t.p.opts.Credentials
	if err := t.keepSmallBody(req); err != nil {
		return nil, err
	}
	auth, err := creds.Authorization(req.Context(), s.Spec)
	if err != nil {
		return nil, fmt.Errorf("get credentials of account %s: %w", s.Spec.Account, err)
	}
	req.Header.Set("Authorization", auth)
	resp, err := s.up.Transport.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !isBearer(auth) {
		return resp, err
	}
	// The token was revoked or superseded (an IdP that keeps one access
	// token per grant revokes the old one on every refresh): never serve
	// it again, and send once more when the body can be replayed.
	creds.Reject(s.Spec, auth)
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil
	}
	retry := req.Clone(req.Context())
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	auth2, err := creds.Authorization(req.Context(), s.Spec)
	if err != nil || auth2 == auth {
		return resp, nil
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	t.p.log.Info("proxy: retrying with a new token after 401", "session", s.ID, "method", req.Method, "path", req.URL.Path)
	retry.Header.Set("Authorization", auth2)
	return s.up.Transport.RoundTrip(retry)
}

// keepSmallBody reads a body of known length up to MaxReplayBody into
// memory so the request can be replayed; larger and chunked bodies are
// left to stream.
func (t *injector) keepSmallBody(req *http.Request) error {
	max := t.p.opts.MaxReplayBody
	if req.Body == nil || req.Body == http.NoBody || req.GetBody != nil || max < 0 ||
		req.ContentLength <= 0 || req.ContentLength > max {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, req.ContentLength))
	req.Body.Close()
	if err != nil {
		return fmt.Errorf("read request body: %w", err)
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return nil
}

func isBearer(auth string) bool {
	scheme, _, _ := strings.Cut(auth, " ")
	return strings.EqualFold(scheme, "Bearer")
}
