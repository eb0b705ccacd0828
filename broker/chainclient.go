package broker

import (
	"context"
	"crypto/sha256"
	"net/http"
)

// answerWaitKey marks the context of a refresh grant: its HTTP client
// waits for the answer as long as the call's context allows (answerWait),
// not the 30 s of the shared clients.
type answerWaitKey struct{}

// withAnswerWait marks ctx as a sent refresh grant's (see answerWaitKey).
func withAnswerWait(ctx context.Context) context.Context {
	return context.WithValue(ctx, answerWaitKey{}, true)
}

// clientForCall returns clientFor(caPEM), or for a refresh grant's context
// a client of its own whose timeouts leave the bound to the context: a
// refresh grant sent is an unknown outcome until its answer arrives, so
// its wait must not end at the shared clients' 30 s.
func (b *Broker) clientForCall(ctx context.Context, caPEM []byte) (*http.Client, error) {
	if b.httpClient != nil || ctx.Value(answerWaitKey{}) == nil {
		return b.clientFor(caPEM)
	}
	key := sha256.Sum256(append([]byte("answer-wait\x00"), caPEM...))
	b.clientsMu.Lock()
	defer b.clientsMu.Unlock()
	if c, ok := b.clients[key]; ok {
		return c, nil
	}
	c, err := NewHTTPClient(HTTPOptions{CAPEM: caPEM, UserAgent: b.userAgent, Timeout: b.stop.answerWait})
	if err != nil {
		return nil, err
	}
	b.clients[key] = c
	return c, nil
}
