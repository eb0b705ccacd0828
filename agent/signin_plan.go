package agent

// A sign-in of the agent runs in three steps: planSignIn decides, from the
// request and the account's current config alone, what the sign-in will be
// (method, kind, server, issuer, client); the run gets the credentials
// (discovery, the browser, device or Login Flow v2 flow); the commit then,
// and only then, replaces what the account had. A failure before the
// commit leaves the account as it was.

import (
	"fmt"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/ipc"
)

// signInPlan is what one sign-in will do. Its ClientSecret is a secret.
type signInPlan struct {
	name string
	// method is MethodBrowser, MethodDevice or MethodAppPassword; empty
	// when the request leaves the choice to discovery (chooseMethod), and
	// then set with withMethod once known.
	method string
	// ac is the account's config after a successful sign-in: the old one
	// with the request's values over it, the method's kind, and the user
	// filled in by the commit.
	ac *AccountConfig
	// clientSecret is the one the request brings; storeSecret says it must
	// be kept (in the store, at commit) because it is new.
	clientSecret broker.Secret
	storeSecret  bool
	caPEM        string // a CA bundle the request brings; else ac.CAFile is read
}

// planSignIn decides a sign-in of account name from req and the account's
// config old (nil for a new account). It makes no call and changes
// nothing; an error is an invalid_request saying what to give.
func planSignIn(name string, req ipc.LoginRequest, old *AccountConfig) (signInPlan, error) {
	ac := &AccountConfig{}
	if old != nil {
		c := *old
		ac = &c
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&ac.Server, req.Server)
	set(&ac.Issuer, req.Issuer)
	set(&ac.ClientID, req.ClientID)
	set(&ac.CAFile, req.CAFile)
	set(&ac.RedirectHost, req.RedirectHost)
	if len(req.Scopes) > 0 {
		ac.Scopes = req.Scopes
	}
	if req.ClientSecret != "" && ac.ClientAuth == "" {
		ac.ClientAuth = string(broker.ClientAuthBasic)
	}
	if ac.Server == "" && ac.Issuer == "" {
		return signInPlan{}, invalidSignIn(name, "account %s is new: give its server, e.g. ncagent login %s --server https://cloud.example.com", name, name)
	}
	p := signInPlan{name: name, ac: ac, clientSecret: broker.Secret(req.ClientSecret),
		storeSecret: req.ClientSecret != "", caPEM: req.CAPEM}
	method := req.Method
	switch {
	case method != "":
	case old != nil && old.Kind == string(broker.KindAppPassword) && req.Issuer == "" && req.ClientID == "":
		method = MethodAppPassword
	case old != nil && old.Kind == string(broker.KindOIDC) && req.Server == "":
		method = MethodBrowser
	default:
		return p, nil // chooseMethod decides
	}
	return p, p.withMethod(method)
}

// withMethod sets the plan's method and what follows from it: the
// account's kind, and the issuer (oidc) or server (app-password) when only
// the other is known.
func (p *signInPlan) withMethod(method string) error {
	switch method {
	case MethodBrowser, MethodDevice:
		p.ac.Kind = string(broker.KindOIDC)
		if p.ac.Issuer == "" {
			p.ac.Issuer = p.ac.Server
		}
		if p.ac.ClientID == "" {
			return invalidSignIn(p.name, "account %s has no OAuth client id for the %s sign-in: register a public client for ncagent at the identity provider "+
				"(on Nextcloud's oidc app: occ oidc:create ncagent 'http://localhost:*/callback' --type=public) and run ncagent login %s --client-id ID, "+
				"or sign in with --method app-password", p.name, method, p.name)
		}
	case MethodAppPassword:
		p.ac.Kind = string(broker.KindAppPassword)
		if p.ac.Server == "" {
			p.ac.Server = p.ac.Issuer
		}
	default:
		return invalidSignIn(p.name, "unknown sign-in method %q: use browser, device or app-password", method)
	}
	p.method = method
	return nil
}

// invalidSignIn is the invalid_request of a sign-in of account name.
func invalidSignIn(name, format string, args ...any) *ipc.Error {
	return &ipc.Error{Code: ipc.CodeInvalidRequest, Account: name, Message: fmt.Sprintf(format, args...)}
}
