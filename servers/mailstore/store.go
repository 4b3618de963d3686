// Package mailstore holds the lab's accounts and mailboxes: what SMTP
// delivers into and what IMAP and POP3 read. It keeps everything in memory
// and, when given a directory, also in Maildir (one Maildir++ tree per
// account) so that a restarted lab still has its mail.
//
// All methods are safe for concurrent use. The store's lock guards the
// accounts and their lists of mailboxes; each mailbox has its own lock for
// its messages, so a delivery to one account (with its fsyncs) never holds
// up another. docs/store.md describes the on-disk format, the durability
// guarantees and the limits.
package mailstore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors callers branch on.
var (
	// ErrNoSuchUser means no account has that address or user name.
	ErrNoSuchUser = errors.New("no such user")
	// ErrNoSuchMailbox means the account has no mailbox of that name.
	ErrNoSuchMailbox = errors.New("no such mailbox")
	// ErrMailboxExists means a mailbox of that name already exists.
	ErrMailboxExists = errors.New("mailbox already exists")
	// ErrOverQuota means storing the message would exceed the account's quota.
	ErrOverQuota = errors.New("mailbox full: quota exceeded")
	// ErrNoSuchMessage means no message has that UID (any more).
	ErrNoSuchMessage = errors.New("no such message")
	// ErrInvalidName means a mailbox name cannot be stored.
	ErrInvalidName = errors.New("invalid mailbox name")
	// ErrKeywordLimit means a change would break a keyword limit (see
	// Limits); the store is left as it was.
	ErrKeywordLimit = errors.New("too many keywords")
	// ErrStoreLocked means another process (or another Store in this one)
	// has the store directory open.
	ErrStoreLocked = errors.New("store directory in use")
)

// Default keyword limits (see Limits). A client that needs more than a few
// dozen keywords on one message is misbehaving; Cyrus IMAP allows 128 user
// flags per mailbox, the lab allows more because it stores them cheaply.
const (
	DefaultKeywordsPerMessage = 128
	DefaultKeywordsPerMailbox = 1024
	DefaultKeywordLength      = 256
)

// Limits bound what one client can make the store keep. In each field
// zero means the default and a negative value means no limit.
type Limits struct {
	// KeywordsPerMessage bounds the keywords (flags not starting with
	// "\") of one message; default DefaultKeywordsPerMessage.
	KeywordsPerMessage int
	// KeywordsPerMailbox bounds the distinct keywords in one mailbox;
	// default DefaultKeywordsPerMailbox.
	KeywordsPerMailbox int
	// KeywordLength bounds the length of one keyword in bytes; default
	// DefaultKeywordLength.
	KeywordLength int
}

func (l Limits) withDefaults() Limits {
	def := func(v, d int) int {
		switch {
		case v == 0:
			return d
		case v < 0:
			return 0 // no limit
		}
		return v
	}
	l.KeywordsPerMessage = def(l.KeywordsPerMessage, DefaultKeywordsPerMessage)
	l.KeywordsPerMailbox = def(l.KeywordsPerMailbox, DefaultKeywordsPerMailbox)
	l.KeywordLength = def(l.KeywordLength, DefaultKeywordLength)
	return l
}

// Inbox is the name of the mailbox that delivery fills (RFC 3501 §5.1: the
// name is case-insensitive).
const Inbox = "INBOX"

// Store is the set of accounts of one lab. The zero value is not usable;
// call Open.
type Store struct {
	mu     sync.Mutex
	dir    string
	users  map[string]*User // by lower-case user name
	addrs  map[string]*User // by lower-case email address
	now    func() time.Time
	log    *slog.Logger
	limits Limits
	quota  int64 // default quota of new accounts
	// maxSize is the message size limit of every protocol; 0: none.
	maxSize int64
	lock    *os.File // flock'ed lock file of dir; nil in memory or closed
	closed  bool
	// repairs lists what loading fixed in damaged uidlists.
	repairs []string
	// lastValidity is the highest UIDVALIDITY handed out, so a mailbox
	// made again within the same second still gets a new one.
	lastValidity uint32
}

// Options configures Open.
type Options struct {
	// Dir is the root of the Maildir tree; empty keeps mail in memory only.
	Dir string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives a warning for each repair of a damaged uidlist;
	// nil discards them (Repairs still lists them).
	Logger *slog.Logger
	// DefaultQuota is the quota in bytes of every account AddUser makes;
	// 0 means unlimited. User.SetQuota changes it per account.
	DefaultQuota int64
	// Limits bounds keywords; the zero value has the defaults.
	Limits Limits
	// MaxMessageSize is the largest message the lab's protocols accept,
	// in bytes: SMTP's SIZE and IMAP's APPENDLIMIT. 0 means
	// DefaultMaxMessageSize, a negative value no limit. The store itself
	// does not refuse bigger messages (SMTP adds a Received field after
	// its check); the servers check at their edge.
	MaxMessageSize int64
}

// DefaultMaxMessageSize is the default Options.MaxMessageSize: 25 MiB, the
// limit of the lab's SMTP server and of most providers.
const DefaultMaxMessageSize = 25 << 20

// MaxMessageSize returns the message size limit in bytes; 0 means none.
func (s *Store) MaxMessageSize() int64 { return s.maxSize }

// Open returns a store. With opts.Dir set it checks that the directory can
// be created and written, so a bad --store fails at start, not at the first
// delivery, and takes an exclusive lock on it: while this Store is open
// (until Close), another Open of the same directory fails with
// ErrStoreLocked and the pid of the holder.
func Open(opts Options) (*Store, error) {
	s := &Store{
		dir:    opts.Dir,
		users:  make(map[string]*User),
		addrs:  make(map[string]*User),
		now:    opts.Now,
		log:    opts.Logger,
		limits: opts.Limits.withDefaults(),
		quota:  max(opts.DefaultQuota, 0),
	}
	switch {
	case opts.MaxMessageSize == 0:
		s.maxSize = DefaultMaxMessageSize
	case opts.MaxMessageSize > 0:
		s.maxSize = opts.MaxMessageSize
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.dir != "" {
		abs, err := filepath.Abs(s.dir)
		if err != nil {
			return nil, fmt.Errorf("store directory %s: %w", s.dir, err)
		}
		s.dir = abs
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			return nil, fmt.Errorf("store directory %s: %w", s.dir, err)
		}
		probe, err := os.CreateTemp(s.dir, ".write-test-*")
		if err != nil {
			return nil, fmt.Errorf("store directory %s is not writable: %w", s.dir, err)
		}
		probe.Close()
		os.Remove(probe.Name())
		if s.lock, err = lockDir(s.dir); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Close compacts every uidlist and releases the lock on the store
// directory. The store must not be used afterwards; Close of a closed
// store does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, u := range s.users {
		for _, mb := range u.mailboxes {
			mb.mu.Lock()
			if mb.dir != "" && !mb.deleted {
				if err := mb.saveUIDListLocked(); err != nil {
					errs = append(errs, err)
				}
			}
			mb.mu.Unlock()
		}
	}
	if s.lock != nil {
		if err := s.lock.Close(); err != nil { // closing releases the flock
			errs = append(errs, fmt.Errorf("store lock: %w", err))
		}
		s.lock = nil
	}
	return errors.Join(errs...)
}

// Repairs returns what loading the Maildir fixed, one line each (a
// damaged uidlist, duplicate UIDs); empty when nothing was wrong.
func (s *Store) Repairs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.repairs)
}

// repairLocked records and logs one repair.
func (s *Store) repairLocked(path, what string) {
	line := path + ": " + what
	s.repairs = append(s.repairs, line)
	s.log.Warn("store repaired", "file", path, "repair", what)
}

// Dir returns the Maildir root, or "" for an in-memory store.
func (s *Store) Dir() string { return s.dir }

// AddUser creates an account with an INBOX (loading its Maildir when the
// store has a directory). Email and user name are matched
// case-insensitively; Password is compared exactly by authenticators.
func (s *Store) AddUser(email, username, password string) (*User, error) {
	if email == "" || username == "" {
		return nil, errors.New("add user: email and username are required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(username)
	if _, ok := s.users[key]; ok {
		return nil, fmt.Errorf("add user %s: already exists", username)
	}
	u := &User{
		store:     s,
		Email:     email,
		Username:  username,
		Password:  password,
		mailboxes: make(map[string]*Mailbox),
	}
	u.quota.Store(s.quota)
	if s.dir != "" {
		u.dir = filepath.Join(s.dir, maildirName(username))
		if err := u.loadLocked(); err != nil {
			return nil, fmt.Errorf("add user %s: %w", username, err)
		}
	}
	if _, ok := u.mailboxes[Inbox]; !ok {
		if _, err := u.createLocked(Inbox); err != nil {
			return nil, fmt.Errorf("add user %s: %w", username, err)
		}
	}
	s.users[key] = u
	s.addrs[strings.ToLower(email)] = u
	return u, nil
}

// User returns the account whose user name equals name, ignoring case.
func (s *Store) User(name string) (*User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[strings.ToLower(name)]
	if !ok {
		return nil, ErrNoSuchUser
	}
	return u, nil
}

// UserByAddress returns the account that receives mail for addr, ignoring
// case (the lab treats local parts as case-insensitive, as most providers
// do despite RFC 5321 §2.4).
func (s *Store) UserByAddress(addr string) (*User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.addrs[strings.ToLower(strings.Trim(addr, "<>"))]
	if !ok {
		return nil, ErrNoSuchUser
	}
	return u, nil
}

// Users returns every account, sorted by user name.
func (s *Store) Users() []*User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Username < out[j].Username })
	return out
}

// Deliver stores msg in the INBOX of the account that receives mail for
// rcpt. It returns ErrNoSuchUser or ErrOverQuota (wrapped) for the SMTP
// server to map to 550 5.1.1 or 552 5.2.2. The store keeps msg without
// copying it: the caller must not modify it afterwards.
func (s *Store) Deliver(rcpt string, msg []byte) error {
	u, err := s.UserByAddress(rcpt)
	if err != nil {
		return fmt.Errorf("deliver to %s: %w", rcpt, err)
	}
	mb, err := u.Mailbox(Inbox)
	if err != nil {
		return fmt.Errorf("deliver to %s: %w", rcpt, err)
	}
	// SMTP hands each message over once; the recipients' mailboxes share
	// it instead of each keeping a copy.
	if _, err := mb.AppendOwned(msg, nil, time.Time{}); err != nil {
		return fmt.Errorf("deliver to %s: %w", rcpt, err)
	}
	return nil
}

// User is one account. Email, Username and Password are fixed after
// AddUser; everything else goes through methods.
type User struct {
	store    *Store
	Email    string
	Username string
	Password string

	dir        string       // Maildir root of this user; "" in memory
	quota      atomic.Int64 // bytes; 0 means unlimited
	used       atomic.Int64 // bytes of all messages in all mailboxes
	mailboxes  map[string]*Mailbox
	subscribed map[string]bool
}

// SetQuota limits the total size of the user's messages; 0 (or less)
// removes the limit. Messages already stored are kept even when over the
// new quota.
func (u *User) SetQuota(bytes int64) {
	u.quota.Store(max(bytes, 0))
}

// Quota returns the limit (0: none) and the bytes in use.
func (u *User) Quota() (limit, used int64) {
	return u.quota.Load(), u.used.Load()
}

// OverQuota reports whether one more message of size bytes would exceed
// the quota.
func (u *User) OverQuota(size int64) bool {
	q := u.quota.Load()
	return q > 0 && u.used.Load()+size > q
}

// reserve counts size bytes as used unless that would exceed the quota;
// it is exact under concurrent deliveries to several mailboxes.
func (u *User) reserve(size int64) bool {
	n := u.used.Add(size)
	if q := u.quota.Load(); q > 0 && n > q {
		u.used.Add(-size)
		return false
	}
	return true
}

// canonicalName maps every spelling of INBOX to Inbox.
func canonicalName(name string) string {
	if strings.EqualFold(name, Inbox) {
		return Inbox
	}
	return name
}

// Mailbox returns the named mailbox.
func (u *User) Mailbox(name string) (*Mailbox, error) {
	u.store.mu.Lock()
	defer u.store.mu.Unlock()
	mb, ok := u.mailboxes[canonicalName(name)]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, ErrNoSuchMailbox)
	}
	return mb, nil
}

// Mailboxes returns the names of all mailboxes, sorted, INBOX first.
func (u *User) Mailboxes() []string {
	u.store.mu.Lock()
	defer u.store.mu.Unlock()
	names := make([]string, 0, len(u.mailboxes))
	for name := range u.mailboxes {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		if names[i] == Inbox || names[j] == Inbox {
			return names[i] == Inbox && names[j] != Inbox
		}
		return names[i] < names[j]
	})
	return names
}

// CreateMailbox creates a mailbox. The hierarchy delimiter is "/".
func (u *User) CreateMailbox(name string) error {
	u.store.mu.Lock()
	defer u.store.mu.Unlock()
	_, err := u.createLocked(canonicalName(name))
	return err
}

func (u *User) createLocked(name string) (*Mailbox, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	if _, ok := u.mailboxes[name]; ok {
		return nil, fmt.Errorf("%s: %w", name, ErrMailboxExists)
	}
	mb := &Mailbox{user: u, name: name, uidValidity: u.store.nextValidityLocked(), uidNext: 1}
	if u.dir != "" {
		mb.dir = u.folderDir(name)
		if err := mb.initDirLocked(); err != nil {
			return nil, err
		}
	}
	u.mailboxes[name] = mb
	return mb, nil
}

func validName(name string) error {
	if name == "" || strings.ContainsAny(name, "\x00\r\n") || strings.HasPrefix(name, "/") ||
		strings.HasSuffix(name, "/") || strings.Contains(name, "//") || strings.Contains(name, "..") {
		return fmt.Errorf("%q: %w", name, ErrInvalidName)
	}
	return nil
}

// DeleteMailbox removes a mailbox and its messages. INBOX cannot be deleted
// (RFC 3501 §6.3.4).
func (u *User) DeleteMailbox(name string) error {
	u.store.mu.Lock()
	defer u.store.mu.Unlock()
	name = canonicalName(name)
	if name == Inbox {
		return fmt.Errorf("cannot delete INBOX: %w", ErrInvalidName)
	}
	mb, ok := u.mailboxes[name]
	if !ok {
		return fmt.Errorf("%s: %w", name, ErrNoSuchMailbox)
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.dir != "" {
		if err := os.RemoveAll(mb.dir); err != nil {
			return fmt.Errorf("delete %s: %w", name, err)
		}
	}
	delete(u.mailboxes, name)
	delete(u.subscribed, name)
	for _, m := range mb.msgs {
		u.used.Add(-int64(len(m.Data)))
	}
	mb.deleted = true
	mb.notifyLocked(Event{Kind: EventDeleted})
	return nil
}

// RenameMailbox renames a mailbox. Renaming INBOX moves its messages to
// the new mailbox and leaves INBOX empty (RFC 3501 §6.3.5).
func (u *User) RenameMailbox(from, to string) error {
	u.store.mu.Lock()
	defer u.store.mu.Unlock()
	from, to = canonicalName(from), canonicalName(to)
	mb, ok := u.mailboxes[from]
	if !ok {
		return fmt.Errorf("%s: %w", from, ErrNoSuchMailbox)
	}
	if _, ok := u.mailboxes[to]; ok {
		return fmt.Errorf("%s: %w", to, ErrMailboxExists)
	}
	if err := validName(to); err != nil || to == Inbox {
		return fmt.Errorf("%q: %w", to, ErrInvalidName)
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if from == Inbox {
		dst, err := u.createLocked(to)
		if err != nil {
			return err
		}
		dst.mu.Lock()
		defer dst.mu.Unlock()
		for _, m := range mb.msgs {
			u.used.Add(int64(len(m.Data))) // expungeLocked takes it off again
			if _, err := dst.appendLocked(m.Data, m.Flags, m.InternalDate); err != nil {
				u.used.Add(-int64(len(m.Data)))
				return err
			}
		}
		uids := make([]uint32, len(mb.msgs))
		for i, m := range mb.msgs {
			uids[i] = m.UID
		}
		_, err = mb.expungeLocked(uids)
		return err
	}
	if mb.dir != "" {
		newDir := u.folderDir(to)
		if err := os.Rename(mb.dir, newDir); err != nil {
			return fmt.Errorf("rename %s: %w", from, err)
		}
		mb.dir = newDir
	}
	delete(u.mailboxes, from)
	mb.name = to
	u.mailboxes[to] = mb
	if u.subscribed[from] {
		delete(u.subscribed, from)
		u.subscribed[to] = true
	}
	return nil
}

// SetSubscribed marks a mailbox as subscribed or not (RFC 3501 §6.3.6).
func (u *User) SetSubscribed(name string, on bool) {
	u.store.mu.Lock()
	defer u.store.mu.Unlock()
	if u.subscribed == nil {
		u.subscribed = make(map[string]bool)
	}
	name = canonicalName(name)
	if on {
		u.subscribed[name] = true
	} else {
		delete(u.subscribed, name)
	}
}

// Subscribed reports whether a mailbox is subscribed. INBOX always is.
func (u *User) Subscribed(name string) bool {
	u.store.mu.Lock()
	defer u.store.mu.Unlock()
	name = canonicalName(name)
	return name == Inbox || u.subscribed[name]
}

// nextValidityLocked returns a UIDVALIDITY for a new mailbox: the current
// time in seconds, and always more than any given before (RFC 3501
// §2.3.1.1: a mailbox made again must not reuse its old value).
func (s *Store) nextValidityLocked() uint32 {
	v := uint32(s.now().Unix())
	if v <= s.lastValidity {
		v = s.lastValidity + 1
	}
	if v == 0 {
		v = 1
	}
	s.lastValidity = v
	return v
}
