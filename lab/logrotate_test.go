package lab_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/maillab/maillab/lab"
)

// TestLabLogRotates runs sessions until lab.log has been rotated more often
// than it keeps files (issue 12, defect 6: lab.log grew without bound).
func TestLabLogRotates(t *testing.T) {
	dir := t.TempDir()
	const maxBytes, keep = 2000, 2
	l := startLab(t, lab.Options{Dir: dir, LogMaxBytes: maxBytes, LogKeep: keep})
	bob := l.Settings().Accounts[1].Email
	for i := 0; i < 8; i++ {
		submit(t, l, "submission", bob, "rotation test")
	}
	for _, name := range []string{"lab.log", "lab.log.1", "lab.log.2"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if st.Size() > maxBytes {
			t.Errorf("%s is %d bytes, over the %d limit", name, st.Size(), maxBytes)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "lab.log.3")); err == nil {
		t.Errorf("lab.log.3 exists; LogKeep is %d", keep)
	}
}
