package broker

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// errAnswerTooLarge refuses an answer over maxResponseBytes.
var errAnswerTooLarge = errors.New("the server's answer is larger than " + strconv.Itoa(maxResponseBytes) + " bytes: refused (is this the right server?)")

// readBody reads a response body of at most maxResponseBytes. A longer
// body is refused, not cut: a cut JSON document fails with a misleading
// error at best.
func readBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponseBytes {
		return nil, errAnswerTooLarge
	}
	return b, nil
}

// boundedAnswers returns a copy of c that reads every response body in
// full with readBody before handing the response on: for x/oauth2, which
// cuts an answer at 1 MiB and parses what is left, so that an answer too
// large is refused with errAnswerTooLarge instead.
func boundedAnswers(c *http.Client) *http.Client {
	cc := *c
	rt := cc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	cc.Transport = boundedTransport{rt}
	return &cc
}

type boundedTransport struct{ rt http.RoundTripper }

func (t boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := readBody(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	return resp, nil
}
