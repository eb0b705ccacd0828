package ipc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestTokenAnswersAreMarshal: every answer tokenAnswers gives is the
// bytes json.Marshal gives for the same response, whether reused or not,
// across more responses than it keeps and from concurrent callers; reset
// forgets them.
func TestTokenAnswersAreMarshal(t *testing.T) {
	var m tokenAnswers
	exp := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	resp := func(account string, in int64) TokenResponse {
		return TokenResponse{Account: account, TokenType: "Bearer", AccessToken: "at-" + account,
			Authorization: "Bearer at-" + account, ExpiresAt: exp, ExpiresIn: in, Scope: "files openid", Server: "https://cloud.example"}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				r := resp(fmt.Sprintf("acct%d", (g+i)%6), int64(3600-i/50))
				got, err := m.encode(&r)
				want, _ := json.Marshal(&r)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("encode(%s, %d): got %s, %v; want %s", r.Account, r.ExpiresIn, got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()

	r := resp("work", 60)
	first, _ := m.encode(&r)
	again, _ := m.encode(&r)
	if &first[0] != &again[0] {
		t.Errorf("the same response twice: encoded twice, want the first encoding reused")
	}
	r.ExpiresIn--
	if next, _ := m.encode(&r); bytes.Equal(next, first) {
		t.Errorf("expires_in changed: got the old answer %s", next)
	}
	m.reset()
	for i := range m.slots {
		if m.slots[i].body != nil {
			t.Fatalf("after reset: slot %d still holds an answer", i)
		}
	}
}
