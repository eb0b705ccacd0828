package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/ncagent/ncagent/broker"
)

// chainTimesFile is a broker.ChainTimesStore in a small JSON file the
// agent owns (by default under the user cache dir: losing it only costs a
// keep-alive refresh at the next start). It holds no secret: only times and
// broker.ChainID, a one-way 64-bit name of the refresh token.
type chainTimesFile struct {
	path string
	log  *slog.Logger

	mu    sync.Mutex                   // guards times and writes of the file
	times map[string]broker.ChainTimes // by account; nil until loaded
}

var _ broker.ChainTimesStore = (*chainTimesFile)(nil)

// maxChainTimesFile bounds the file read (a few hundred bytes per account);
// a longer file fails to decode and is ignored.
const maxChainTimesFile = 1 << 20

// defaultChainTimesPath is where the agent keeps chain times by default.
func defaultChainTimesPath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("chain times: %w", err)
	}
	return filepath.Join(dir, "ncagent", "chain-times.json"), nil
}

func (f *chainTimesFile) load() {
	if f.times != nil {
		return
	}
	f.times = map[string]broker.ChainTimes{}
	fh, err := os.Open(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		f.log.Warn("chain times not read: the next keep-alive refreshes happen at once", "path", f.path, "err", err)
		return
	}
	defer fh.Close()
	var doc struct {
		Chains map[string]broker.ChainTimes `json:"chains"`
	}
	if err := json.NewDecoder(io.LimitReader(fh, maxChainTimesFile)).Decode(&doc); err != nil {
		f.log.Warn("chain times file unreadable: ignored", "path", f.path, "err", err)
		return
	}
	for k, v := range doc.Chains {
		f.times[k] = v
	}
}

// LoadChainTimes implements broker.ChainTimesStore.
func (f *chainTimesFile) LoadChainTimes(account string) (broker.ChainTimes, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.load()
	t, ok := f.times[account]
	return t, ok
}

// SaveChainTimes implements broker.ChainTimesStore: it replaces the file
// atomically (temp file and rename, 0600 in a 0700 dir). A failure is
// logged and otherwise ignored.
func (f *chainTimesFile) SaveChainTimes(account string, t broker.ChainTimes) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.load()
	f.times[account] = t
	if err := f.write(); err != nil {
		f.log.Warn("chain times not saved: the next start refreshes at once", "path", f.path, "err", err)
	}
}

func (f *chainTimesFile) write() error {
	b, err := json.MarshalIndent(struct {
		Chains map[string]broker.ChainTimes `json:"chains"`
	}{f.times}, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(f.path, false, writeBytes(append(b, '\n')))
}
