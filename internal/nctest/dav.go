package nctest

import (
	"net/http"
	"strings"

	"golang.org/x/net/webdav"
)

// DAV serves Nextcloud's WebDAV endpoints the way Nextcloud routes them
// (https://docs.nextcloud.com/server/latest/developer_manual/client_apis/WebDAV/basic.html):
//
//   - /remote.php/dav/files/{user}/ is the user's files root (the
//     endpoint current clients use; {user} is the user id);
//   - /remote.php/webdav/ is the legacy alias of the same files.
//
// The WebDAV protocol itself (PROPFIND, PROPPATCH, MKCOL, COPY, MOVE with
// Destination, LOCK/UNLOCK, GET, PUT, DELETE) is golang.org/x/net/webdav,
// a real RFC 4918 server, over an in-memory file system, or over
// Options.DAVDir when set (so large bodies stream to disk).
//
// Every request must authenticate, as on Nextcloud: Basic with the login
// name (or user id) and a valid app password, or, when Options.Bearer is
// set, "Authorization: Bearer" with a token Bearer accepts — what the
// user_oidc app does with a bearer token of its IdP. Anything else is 401
// with a WWW-Authenticate challenge, as sabre/dav answers.
func (s *Server) registerDAV(mux *http.ServeMux) {
	var fs webdav.FileSystem = webdav.NewMemFS()
	if s.opts.DAVDir != "" {
		fs = webdav.Dir(s.opts.DAVDir)
	}
	ls := webdav.NewMemLS()
	files := &webdav.Handler{Prefix: "/remote.php/dav/files/" + s.opts.UserID, FileSystem: fs, LockSystem: ls}
	legacy := &webdav.Handler{Prefix: "/remote.php/webdav", FileSystem: fs, LockSystem: ls}
	mux.Handle("/remote.php/dav/files/{user}/", s.authDAV(files))
	mux.Handle("/remote.php/webdav/", s.authDAV(legacy))
	// Nextcloud sends a browser at its root to the login page, with an
	// absolute URL (URLGenerator::linkToRouteAbsolute).
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, s.URL+"/login", http.StatusFound)
	})
}

// authDAV refuses requests without valid credentials, and requests for
// another user's files with 404, as Nextcloud does.
func (s *Server) authDAV(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.count(EndpointDAV)
		if !s.davAuthorized(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="Nextcloud", charset="UTF-8"`)
			http.Error(w, "No public access to this resource., No 'Authorization: Basic' header found", http.StatusUnauthorized)
			return
		}
		if u := r.PathValue("user"); u != "" && u != s.opts.UserID {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) davAuthorized(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	if scheme, tok, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "Bearer") {
		if s.opts.Bearer == nil {
			return false
		}
		user, ok := s.opts.Bearer(tok)
		return ok && (user == s.opts.UserID || user == s.opts.LoginName)
	}
	user, pass, ok := r.BasicAuth()
	s.mu.Lock()
	defer s.mu.Unlock()
	return ok && (user == s.opts.LoginName || user == s.opts.UserID) && s.passwords[pass]
}

// observe calls Options.OnRequest for every request before it is served.
func (s *Server) observe(h http.Handler) http.Handler {
	if s.opts.OnRequest == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.opts.OnRequest(r)
		h.ServeHTTP(w, r)
	})
}

// AddAppPassword makes password a valid app password of the user, as if
// a login flow had issued it (for tests that provision an account without
// running the flow). It is a secret: tests must not log it.
func (s *Server) AddAppPassword(password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passwords[password] = true
	s.issued = append(s.issued, password)
}
