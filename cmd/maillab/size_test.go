package main

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0", 0, false},
		{"4096", 4096, false},
		{"25MiB", 25 << 20, false},
		{"25 MiB", 25 << 20, false},
		{"256M", 256 << 20, false},
		{"1G", 1 << 30, false},
		{"512k", 512 << 10, false},
		{"10b", 10, false},
		{"", 0, true},
		{"-1", 0, true},
		{"1.5G", 0, true},
		{"MiB", 0, true},
		{"12XB", 0, true},
		{"99999999999999999G", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize("quota", tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseSize(%q) = %d, %v, want %d (error: %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "25MiB", "1G", "-1", "9223372036854775807", "1kb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize("quota", s)
		if err == nil && n < 0 {
			t.Fatalf("parseSize(%q) = %d, want ≥ 0", s, n)
		}
	})
}
