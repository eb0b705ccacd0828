package proxy

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// samePeerUser refuses a TCP peer whose socket is not owned by our uid.
func samePeerUser(c net.Conn) error {
	uid, err := peerUID(c.LocalAddr(), c.RemoteAddr())
	if err != nil {
		return err
	}
	if uid != os.Getuid() {
		return fmt.Errorf("peer socket belongs to uid %d, not %d", uid, os.Getuid())
	}
	return nil
}

// peerUID finds the owner of the peer's end of a loopback TCP connection:
// the row of /proc/net/tcp (or tcp6) whose local address is the peer's and
// whose remote address is ours. Hand-written because no library in the
// module reads it (x/sys has no /proc/net parser), and the format is
// fixed (Documentation/networking/proc_net_tcp.rst): addresses are hex
// 32-bit words in host byte order, ports hex, the uid the 8th field.
func peerUID(local, remote net.Addr) (int, error) {
	l, lok := local.(*net.TCPAddr)
	r, rok := remote.(*net.TCPAddr)
	if !lok || !rok {
		return 0, errPeerUnknown
	}
	file := "/proc/net/tcp"
	if l.IP.To4() == nil {
		file = "/proc/net/tcp6"
	}
	want0, want1 := procAddr(r), procAddr(l)
	f, err := os.Open(file)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errPeerUnknown, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[1] != want0 || fields[2] != want1 {
			continue
		}
		uid, err := strconv.Atoi(fields[7])
		if err != nil {
			return 0, errPeerUnknown
		}
		return uid, nil
	}
	return 0, errPeerUnknown
}

// procAddr formats a TCP address as /proc/net/tcp{,6} shows it.
func procAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	if ip == nil {
		ip = a.IP.To16()
	}
	var b strings.Builder
	for i := 0; i+4 <= len(ip); i += 4 {
		fmt.Fprintf(&b, "%08X", binary.NativeEndian.Uint32(ip[i:i+4]))
	}
	fmt.Fprintf(&b, ":%04X", a.Port)
	return b.String()
}
