package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestReleaseMappingsOnlyCleanExecutable: of a process's mappings only the
// read-only ones of the executable's inode without an anonymous page are
// released; a relocated (copied-on-write) read-only segment, a writable
// one, another file's and anonymous memory are kept.
func TestReleaseMappingsOnlyCleanExecutable(t *testing.T) {
	const smaps = `00400000-0098c000 r-xp 00000000 fe:00 42 /usr/bin/ncagent
Size:               5680 kB
Rss:                5600 kB
Anonymous:             0 kB
0098c000-00f5f000 r--p 0058c000 fe:00 42 /usr/bin/ncagent
Rss:                5708 kB
Anonymous:             0 kB
00f5f000-00f60000 r--p 00b5f000 fe:00 42 /usr/bin/ncagent
Rss:                   4 kB
Anonymous:             4 kB
00f60000-00fc8000 rw-p 00b60000 fe:00 42 /usr/bin/ncagent
Rss:                 356 kB
Anonymous:           104 kB
7f0000000000-7f0000400000 r--p 00000000 fe:00 43 /usr/lib/other.so
Rss:                  64 kB
Anonymous:             0 kB
38887c800000-38887e000000 rw-p 00000000 00:00 0
Rss:                3612 kB
Anonymous:          3612 kB
`
	var released []string
	kb, err := releaseMappings(strings.NewReader(smaps), 42, func(m mapping) error {
		released = append(released, strconv.FormatUint(m.start, 16)+" "+m.perms)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "400000 r-xp,98c000 r--p"; strings.Join(released, ",") != want || kb != 5600+5708 {
		t.Errorf("released %q (%d kB), want %q (%d kB)", strings.Join(released, ","), kb, want, 5600+5708)
	}
}

// TestReleaseExecutable releases the test binary's own mapped code and
// read-only data: RssFile falls, and the code runs on from the page cache.
func TestReleaseExecutable(t *testing.T) {
	before := rssFileKB(t)
	kb, err := releaseExecutable()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFileKB(t)
	if kb <= 0 || after >= before {
		t.Fatalf("released %d kB: RssFile %d kB before, %d after; want it lower", kb, before, after)
	}
	// Code and tables not used before are mapped again from the file.
	if got := fmt.Sprintf("%x", sha256.Sum256([]byte("abc"))); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("sha256 after release: got %s", got)
	}
	t.Logf("released %d kB of the executable: RssFile %d kB -> %d kB", kb, before, after)
}

func rssFileKB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}
