package netx

import (
	"net"
	"testing"
)

// fakeConn is a connection from a given client address.
type fakeConn struct {
	net.Conn
	remote net.Addr
	closed int
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.remote }
func (c *fakeConn) Close() error         { c.closed++; return nil }

func from(ip string) *fakeConn {
	return &fakeConn{remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
}

func TestConnLimiter(t *testing.T) {
	tests := []struct {
		name             string
		perClient, total int
		clients          []string // connect in order
		refused          []bool   // want refused, per connection
		perClientRefusal []bool
	}{
		{"per client", 2, -1, []string{"127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3"}, []bool{false, false, true, false}, []bool{false, false, true, false}},
		{"total", -1, 2, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}, []bool{false, false, true}, []bool{false, false, false}},
		{"zero admits none", 0, -1, []string{"127.0.0.2"}, []bool{true}, []bool{true}},
		{"no limits", -1, -1, []string{"127.0.0.2", "127.0.0.2", "127.0.0.2"}, []bool{false, false, false}, []bool{false, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewConnLimiter(tt.perClient, tt.total)
			var admitted []net.Conn
			for i, ip := range tt.clients {
				c, err := l.Admit(from(ip))
				if (err != nil) != tt.refused[i] {
					t.Fatalf("connection %d from %s: refused = %v, want %v", i, ip, err != nil, tt.refused[i])
				}
				if err != nil {
					if err.PerClient != tt.perClientRefusal[i] || err.Client != ip {
						t.Errorf("connection %d: LimitError %+v, want PerClient %v, Client %s", i, err, tt.perClientRefusal[i], ip)
					}
					continue
				}
				admitted = append(admitted, c)
			}
			// Closing gives the slots back, once per connection however
			// often it is closed.
			for _, c := range admitted {
				c.Close()
				c.Close()
			}
			for _, ip := range tt.clients {
				if n, total := l.Open(ip); n != 0 || total != 0 {
					t.Errorf("after close: Open(%s) = %d, %d, want 0, 0", ip, n, total)
				}
			}
			if len(admitted) > 0 {
				if _, err := l.Admit(from(tt.clients[0])); err != nil {
					t.Errorf("after close: Admit refused: %v", err)
				}
			}
		})
	}
}

func TestNilConnLimiterAdmitsAll(t *testing.T) {
	var l *ConnLimiter
	c := from("127.0.0.2")
	got, err := l.Admit(c)
	if err != nil || got != net.Conn(c) {
		t.Errorf("nil limiter: Admit = %v, %v; want the connection itself", got, err)
	}
}
