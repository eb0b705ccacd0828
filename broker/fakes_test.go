package broker

import (
	"errors"
	"fmt"
	"sync"
)

var _ Store = (*memStore)(nil)

// memStore is an in-memory Store with failure injection.
type memStore struct {
	mu      sync.Mutex // guards all fields
	secrets map[string]Secret
	history map[string][]Secret // every Put, in order
	putErr  error               // returned by Put while set
	getErr  error               // returned by Get while set
	gets    int
	puts    int
}

func newMemStore() *memStore {
	return &memStore{secrets: map[string]Secret{}, history: map[string][]Secret{}}
}

func (s *memStore) Get(account string) (Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	if s.getErr != nil {
		return "", s.getErr
	}
	v, ok := s.secrets[account]
	if !ok {
		return "", fmt.Errorf("memstore: get %q: %w", account, ErrNotFound)
	}
	return v, nil
}

func (s *memStore) Put(account string, secret Secret) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts++
	if s.putErr != nil {
		return s.putErr
	}
	s.secrets[account] = secret
	s.history[account] = append(s.history[account], secret)
	return nil
}

func (s *memStore) Delete(account string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.secrets, account)
	return nil
}

func (s *memStore) set(account string, secret Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[account] = secret
}

func (s *memStore) get(account string) (Secret, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.secrets[account]
	return v, ok
}

func (s *memStore) failPuts(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.putErr = err
}

func (s *memStore) counts() (gets, puts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets, s.puts
}

var errStoreLocked = errors.New("keychain locked")
