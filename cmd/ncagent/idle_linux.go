package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// releaseExecutable unmaps this process's pages of its own executable's
// code and read-only data, and returns how many kB were mapped. The
// kernel maps an executable's page cache into the process 64 KiB or a
// large folio at a time, so after a day's use the agent maps nearly all
// of its 12 MB binary (RssFile), though a token request runs in a small
// part of it; and mapped executable pages are the last the kernel
// reclaims. madvise(MADV_DONTNEED) on a private file mapping only drops
// the process's page table entries: the pages stay in the page cache,
// shared with every ncagent process, and the next access maps them again
// from the file, as after any reclaim. Only mappings that cannot hold a
// page of their own are released: read-only (r-xp, r--p), of the
// executable's inode, with no anonymous (copied-on-write, relocated)
// page in smaps. What remains is the agent's own memory (RssAnon), and
// what a request maps again costs it once (TestCLIBench reports it).
func releaseExecutable() (int, error) {
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &self); err != nil {
		return 0, fmt.Errorf("release executable: %w", err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, fmt.Errorf("release executable: %w", err)
	}
	defer f.Close()
	kb, err := releaseMappings(f, self.Ino, mapping.dontNeed)
	if err != nil {
		return kb, fmt.Errorf("release executable: %w", err)
	}
	return kb, nil
}

// releaseMappings calls release for each mapping of smaps (the format of
// /proc/<pid>/smaps) that is read-only, of inode ino and holds no
// anonymous page, and returns the kB they had mapped (Rss).
func releaseMappings(smaps io.Reader, ino uint64, release func(mapping) error) (int, error) {
	var (
		kb   int
		cur  *mapping
		errs []error
	)
	done := func() {
		if cur == nil || !cur.release {
			return
		}
		if err := release(*cur); err != nil {
			errs = append(errs, err)
			return
		}
		kb += cur.rssKB
	}
	sc := bufio.NewScanner(smaps)
	for sc.Scan() {
		line := sc.Text()
		if m, ok := parseMapping(line); ok {
			done()
			m.release = m.readOnly() && m.inode == ino
			cur = &m
			continue
		}
		if cur == nil {
			continue
		}
		key, val, _ := strings.Cut(line, ":")
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(val), " kB"))
		switch key {
		case "Rss":
			cur.rssKB = n
		case "Anonymous":
			cur.release = cur.release && n == 0
		}
	}
	done()
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("reading smaps: %w", err))
	}
	return kb, errors.Join(errs...)
}

// mapping is one mapping of /proc/self/smaps.
type mapping struct {
	start, end uint64
	perms      string
	inode      uint64
	rssKB      int
	release    bool
}

// parseMapping parses a mapping's header line of /proc/<pid>/smaps
// ("start-end perms offset dev inode path", proc_pid_maps(5)).
func parseMapping(line string) (mapping, bool) {
	f := strings.Fields(line)
	if len(f) < 5 || strings.HasSuffix(f[0], ":") {
		return mapping{}, false
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return mapping{}, false
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	inode, err3 := strconv.ParseUint(f[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || end <= start {
		return mapping{}, false
	}
	return mapping{start: start, end: end, perms: f[1], inode: inode}, true
}

// readOnly: a private mapping nobody can write to.
func (m mapping) readOnly() bool { return m.perms == "r-xp" || m.perms == "r--p" }

func (m mapping) dontNeed() error {
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), unix.MADV_DONTNEED); e != 0 {
		return fmt.Errorf("madvise %x-%x: %w", m.start, m.end, e)
	}
	return nil
}
