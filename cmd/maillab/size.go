package main

import (
	"strconv"
	"strings"
)

// sizeUnits are the suffixes parseSize knows, longest first so "MiB" is
// not read as "M" + "iB". Both decimal-looking and binary spellings mean
// powers of 1024, as in Postfix and Dovecot settings.
var sizeUnits = []struct {
	suffix string
	bytes  int64
}{
	{"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10},
	{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10},
	{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}, {"b", 1},
}

// parseSize reads a byte size such as "25MiB", "256M", "1G", "4096" or
// "0"; flag names the flag in the error.
func parseSize(flag, s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(num), u.bytes
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, usageErrorf("--%s %q: want a size such as 25MiB, 512K or 0", flag, s)
	}
	return n * mult, nil
}
