package dnsd_test

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/maillab/maillab/servers/dnsd"
)

// ownSocketsOn lists this process's TCP and UDP sockets (IPv4) whose local
// address is hexIP in /proc/net notation ("0100007F" for 127.0.0.1).
func ownSocketsOn(t *testing.T, hexIP string) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list /proc/self/fd: %v", err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var found []string
	for _, table := range []string{"tcp", "udp"} {
		f, err := os.Open("/proc/net/" + table)
		if err != nil {
			t.Skipf("cannot read /proc/net/%s: %v", table, err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 {
				continue
			}
			local, inode := fields[1], fields[9]
			if inodes[inode] && strings.HasPrefix(local, hexIP+":") {
				found = append(found, table+" "+local)
			}
		}
		f.Close()
	}
	return found
}

// TestNoListenerOutsideTheLabAddress is the regression test of issue 12,
// defect 7: go-mockdns opens listeners on 127.0.0.1 when a server is made;
// closed before its goroutines had started them, they stayed and served
// 127.0.0.1 for a lab on 127.0.0.2.
func TestNoListenerOutsideTheLabAddress(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/net")
	}
	udp, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this host: %v", err)
	}
	tcp, err := net.Listen("tcp", udp.LocalAddr().String())
	if err != nil {
		udp.Close()
		t.Skipf("tcp on %s: %v", udp.LocalAddr(), err)
	}
	var servers []*dnsd.Server
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	for i := 0; i < 8; i++ {
		s, err := dnsd.New(dnsd.Config{Zones: zones()})
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, s)
	}
	if err := servers[0].Serve(udp, tcp); err != nil {
		t.Fatal(err)
	}
	if got := ownSocketsOn(t, "0100007F"); len(got) > 0 {
		t.Errorf("sockets on 127.0.0.1 for DNS servers on %s: %v", udp.LocalAddr(), got)
	}
}
