package console

import "testing"

func TestHostBreaks(t *testing.T) {
	tests := []struct{ in, want string }{
		{"mail.example.test", "mail.<wbr>example.<wbr>test"},
		{"localhost", "localhost"},
		{"<img src=x>.test", "&lt;img src=x&gt;.<wbr>test"},
		{`a"b.c`, "a&#34;b.<wbr>c"},
	}
	for _, tt := range tests {
		if got := string(hostBreaks(tt.in)); got != tt.want {
			t.Errorf("hostBreaks(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
