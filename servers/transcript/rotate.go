package transcript

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
)

// Rotation defaults for a log file such as the lab's lab.log.
const (
	// DefaultMaxBytes is the size at which a log file is rotated: 10 MiB.
	DefaultMaxBytes = 10 << 20
	// DefaultKeep is how many rotated files are kept (name.1 … name.5),
	// so a log takes at most (DefaultKeep+1) × DefaultMaxBytes on disk.
	DefaultKeep = 5
)

// RotatingFile is an append-only log file that is rotated by size: when a
// write would take it past MaxBytes, name.Keep is removed, name.(i) is
// renamed name.(i+1), name becomes name.1 and a new name is started. A
// write is never split across files; each TextSink entry is one write, so
// no line is cut. It is safe for concurrent use.
type RotatingFile struct {
	name     string
	maxBytes int64 // <= 0: never rotate
	keep     int   // rotated files kept; 0 drops the old content

	mu   sync.Mutex
	f    *os.File
	size int64
}

// OpenRotating opens (or creates, mode 0600) the log file name for
// appending. maxBytes <= 0 never rotates; keep < 0 counts as 0.
func OpenRotating(name string, maxBytes int64, keep int) (*RotatingFile, error) {
	r := &RotatingFile{name: name, maxBytes: maxBytes, keep: max(keep, 0)}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) open() error {
	f, err := os.OpenFile(r.name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, st.Size()
	return nil
}

// Write appends p, rotating first if p would take the file past the limit
// (a write larger than the limit still goes, whole, to a fresh file).
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, fs.ErrClosed
	}
	if r.maxBytes > 0 && r.size > 0 && r.size+int64(len(p)) > r.maxBytes {
		if err := r.rotate(); err != nil {
			return 0, fmt.Errorf("rotate %s: %w", r.name, err)
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *RotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return err
	}
	r.f = nil
	var errs []error
	if r.keep == 0 {
		errs = append(errs, ignoreMissing(os.Remove(r.name)))
	} else {
		errs = append(errs, ignoreMissing(os.Remove(r.rotated(r.keep))))
		for i := r.keep - 1; i >= 1; i-- {
			errs = append(errs, ignoreMissing(os.Rename(r.rotated(i), r.rotated(i+1))))
		}
		errs = append(errs, os.Rename(r.name, r.rotated(1)))
	}
	// Keep logging even if a rename failed: a log that stops is worse.
	errs = append(errs, r.open())
	return errors.Join(errs...)
}

func (r *RotatingFile) rotated(i int) string { return fmt.Sprintf("%s.%d", r.name, i) }

func ignoreMissing(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Close closes the file. Later writes fail with fs.ErrClosed.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
