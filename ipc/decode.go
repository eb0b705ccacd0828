package ipc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// decodeBody decodes a request body into v, a pointer to one of the request
// types. It enforces the wire rules: the body is one JSON object (surrounding
// whitespace allowed, nothing after it), unknown fields are ignored, wrong types and malformed
// JSON are invalid_request with a message naming the field or the offset.
// An empty body is accepted only when emptyOK is set (every field optional).
//
// Messages never echo the input: a body may carry a subject token.
func decodeBody(body []byte, v any, emptyOK bool) *Error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		if emptyOK {
			return nil
		}
		return invalid("empty body: want a JSON object")
	}
	if trimmed[0] != '{' {
		return invalid("body: want a JSON object")
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		return decodeError(err)
	}
	return nil
}

// decodeRequest decodes body into v (one of the request types) and
// validates it.
func decodeRequest(body []byte, v request, emptyOK bool) *Error {
	if e := decodeBody(body, v, emptyOK); e != nil {
		return e
	}
	return v.validate()
}

// decodeError turns a json error into an invalid_request naming the field.
func decodeError(err error) *Error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		if strings.Contains(syn.Error(), "after top-level value") {
			return invalid(fmt.Sprintf("malformed JSON: data after the object at offset %d", syn.Offset))
		}
		return invalid(fmt.Sprintf("malformed JSON at offset %d", syn.Offset))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		got, _, _ := strings.Cut(typ.Value, " ") // "number 1e99" -> "number"
		return invalid(fmt.Sprintf("%s: want %s, got %s", field, jsonKind(typ.Type), got))
	case errors.Is(err, errScopesType):
		return invalid(errScopesType.Error())
	default:
		// io.ErrUnexpectedEOF and the like; do not echo the input.
		return invalid("malformed JSON: unexpected end of input")
	}
}

// jsonKind names the JSON type expected for a Go type.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	default:
		return t.Kind().String()
	}
}

func invalid(msg string) *Error {
	return &Error{Code: CodeInvalidRequest, Message: msg}
}

// validScopes checks each scope against the RFC 6749 grammar:
//
//	scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
//
// https://www.rfc-editor.org/rfc/rfc6749#section-3.3
func validScopes(s Scopes) *Error {
	for i, tok := range s {
		if tok == "" {
			return invalid(fmt.Sprintf("scopes[%d]: empty scope", i))
		}
		for j := 0; j < len(tok); j++ {
			c := tok[j]
			if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
				return invalid(fmt.Sprintf("scopes[%d]: character at %d not allowed in a scope (RFC 6749 section 3.3)", i, j))
			}
		}
	}
	return nil
}

// Validation of each request type after decoding. These are wire rules
// (shape), not token policy: the Backend decides what is allowed.

func (r *TokenRequest) validate() *Error {
	if r.MinValidSeconds < 0 {
		return invalid("min_valid_seconds: must not be negative")
	}
	return validScopes(r.Scopes)
}

func (r *ExchangeRequest) validate() *Error {
	if r.SubjectToken == "" {
		return invalid("subject_token: required")
	}
	if r.ActorTokenType != "" && r.ActorToken == "" {
		return invalid("actor_token: required with actor_token_type")
	}
	return validScopes(r.Scopes)
}

// Login methods accepted in LoginRequest.Method.
const (
	MethodBrowser     = "browser"
	MethodDevice      = "device"
	MethodAppPassword = "app-password"
)

func (r *LoginRequest) validate() *Error {
	if r.Account == "" {
		return invalid("account: required")
	}
	switch r.Method {
	case "", MethodBrowser, MethodDevice, MethodAppPassword:
	default:
		return invalid(`method: want "browser", "device" or "app-password"`)
	}
	return validScopes(r.Scopes)
}

func (r *TokenRequest) account() string    { return r.Account }
func (r *ExchangeRequest) account() string { return r.Account }
func (r *LoginRequest) account() string    { return r.Account }
func (r *RevokeRequest) account() string   { return r.Account }

func (r *RevokeRequest) validate() *Error {
	if r.Account == "" {
		return invalid("account: required")
	}
	return nil
}
