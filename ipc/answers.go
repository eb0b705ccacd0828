package ipc

import (
	"encoding/json"
	"sync"
)

// tokenAnswers keeps the encoded answers of the last tokens handed out. A
// cached token is handed out many times a second, and its answer, whose
// expires_in changes once a second, is the same bytes each time, while
// encoding it is most of a token request's handler: json.Marshal takes
// 2.5 µs for a 90-byte token and 7 µs for a 900-byte JWT, which the
// answer carries twice (access_token, authorization; BENCHMARKS.md). An
// answer is reused only for a TokenResponse equal, field by field, to the
// one it was encoded from, so it is the bytes json.Marshal would write.
// It holds no token the broker's cache does not hold, and is emptied when
// an account is revoked. Safe for concurrent use; the returned bytes are
// shared and must not be modified.
type tokenAnswers struct {
	mu    sync.Mutex // guards slots, next
	slots [4]tokenAnswer
	next  int // the slot the next new answer takes
}

type tokenAnswer struct {
	resp TokenResponse
	body []byte // nil: empty slot
}

// encode returns the JSON encoding of r.
func (m *tokenAnswers) encode(r *TokenResponse) ([]byte, error) {
	m.mu.Lock()
	for i := range m.slots {
		if m.slots[i].body != nil && m.slots[i].resp == *r {
			b := m.slots[i].body
			m.mu.Unlock()
			return b, nil
		}
	}
	m.mu.Unlock()
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.slots[m.next] = tokenAnswer{*r, b}
	m.next = (m.next + 1) % len(m.slots)
	m.mu.Unlock()
	return b, nil
}

// reset forgets every answer.
func (m *tokenAnswers) reset() {
	m.mu.Lock()
	m.slots = [len(m.slots)]tokenAnswer{}
	m.mu.Unlock()
}
