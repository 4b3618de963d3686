package imapd

import (
	"fmt"
	"math"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Default SEARCH limits (see Limits). Real clients nest a handful of
// levels (Thunderbird's saved searches: OR of a few NOTs) and send tens of
// keys; 12,000 nested NOTs over 36,000 messages cost 24 s of CPU before
// these limits.
const (
	DefaultSearchDepth  = 64
	DefaultSearchKeys   = 1000
	DefaultSearchBudget = 10 * time.Second
)

// Limits bounds what one IMAP command may cost the server. In each field
// zero means the default and a negative value means no limit. The message
// size limit (APPENDLIMIT) and the keyword limits belong to the store
// (mailstore.Options), shared with SMTP.
type Limits struct {
	// SearchDepth bounds the nesting of NOT and OR in one SEARCH;
	// default DefaultSearchDepth.
	SearchDepth int
	// SearchKeys bounds the search keys of one SEARCH, nested ones
	// included; default DefaultSearchKeys.
	SearchKeys int
	// SearchBudget bounds the time one SEARCH may spend matching; default
	// DefaultSearchBudget.
	SearchBudget time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.SearchDepth == 0 {
		l.SearchDepth = DefaultSearchDepth
	}
	if l.SearchKeys == 0 {
		l.SearchKeys = DefaultSearchKeys
	}
	if l.SearchBudget == 0 {
		l.SearchBudget = DefaultSearchBudget
	}
	return l
}

// errLimit is the NO [LIMIT] reply (RFC 5530 §3: "the operation ran up
// against an implementation limit of some kind").
func errLimit(format string, args ...any) *imap.Error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit, Text: fmt.Sprintf(format, args...)}
}

// checkSearch refuses criteria nested deeper or holding more keys than
// the limits allow, walking no deeper than the limit itself.
func checkSearch(c *imap.SearchCriteria, l Limits) error {
	keys := 0
	var walk func(c *imap.SearchCriteria, depth int) error
	walk = func(c *imap.SearchCriteria, depth int) error {
		if l.SearchDepth > 0 && depth > l.SearchDepth {
			return errLimit("SEARCH nests NOT and OR deeper than %d levels", l.SearchDepth)
		}
		keys += len(c.SeqNum) + len(c.UID) + len(c.Header) + len(c.Body) + len(c.Text) + len(c.Flag) + len(c.NotFlag)
		for _, t := range []time.Time{c.Since, c.Before, c.SentSince, c.SentBefore} {
			if !t.IsZero() {
				keys++
			}
		}
		if c.Larger > 0 {
			keys++
		}
		if c.Smaller > 0 {
			keys++
		}
		keys += len(c.Not) + len(c.Or)
		if l.SearchKeys > 0 && keys > l.SearchKeys {
			return errLimit("SEARCH has more than %d keys", l.SearchKeys)
		}
		for i := range c.Not {
			if err := walk(&c.Not[i], depth+1); err != nil {
				return err
			}
		}
		for i := range c.Or {
			if err := walk(&c.Or[i][0], depth+1); err != nil {
				return err
			}
			if err := walk(&c.Or[i][1], depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(c, 0)
}

// AppendLimit implements imapserver.SessionAppendLimit: go-imap advertises
// APPENDLIMIT=<n> (RFC 7889) and answers an APPEND whose literal is larger
// with NO [TOOBIG] (RFC 4469 §4) before it asks for the literal, so the
// message is never read. The limit is the store's, the same as SMTP's.
func (s *session) AppendLimit() uint32 {
	n := s.c.srv.cfg.Store.MaxMessageSize()
	if n <= 0 || n > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(n)
}
