package serve

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/transcript"
)

// Event kinds.
const (
	EventTranscript = "transcript" // a protocol line of a session
	EventDNS        = "dns"        // a DNS query or answer
	EventFault      = "fault"      // something a fault did
	EventSession    = "session"    // the lab noted something (connect, TLS)
	EventDelivery   = "delivery"   // a message was stored
	EventLab        = "lab"        // the lab started, restarted, stopped
	EventAuth       = "auth"       // a login refused, with the reason
)

// Event is one line of a lab's live feed (the SSE data and the transcript
// endpoint's JSON lines).
type Event struct {
	// Seq numbers a lab's events from 1, across rebuilds; ?since=N and
	// Last-Event-ID resume after N.
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Service string    `json:"service,omitempty"`
	Session uint64    `json:"session,omitempty"`
	Remote  string    `json:"remote,omitempty"`
	// Dir is "C" (client sent), "S" (server sent) or "*" (lab note).
	Dir  string `json:"dir,omitempty"`
	Text string `json:"text"`
	// data is the SSE data of an event that is not a lab's (a class's
	// "ticket" event carries the ticket's JSON).
	data []byte
}

// eventKind classifies a transcript entry. Faults write their actions as
// lab notes starting with "fault" (one mechanism: the session transcript).
func eventKind(e transcript.Entry) string {
	switch {
	case e.Service == "dns":
		return EventDNS
	case e.Dir == transcript.Event && strings.HasPrefix(e.Text, "fault"):
		return EventFault
	case e.Dir == transcript.Event && strings.HasPrefix(e.Text, lab.RefusalPrefix):
		return EventAuth
	case e.Dir == transcript.Event:
		return EventSession
	}
	return EventTranscript
}

// hub keeps a lab's recent events and fans them out to subscribers. A
// subscriber that does not keep up loses events (counted), never blocks
// the lab: Record never waits.
type hub struct {
	mu      sync.Mutex
	seq     uint64
	ring    []Event // the last cap(ring) events, oldest first once full
	start   int
	subs    map[*subscriber]struct{}
	closed  bool
	dropped *atomic.Uint64 // shared counter for metrics
	onEvent func(Event)
}

type subscriber struct {
	ch      chan Event
	dropped atomic.Uint64
}

func newHub(keep int, dropped *atomic.Uint64, onEvent func(Event)) *hub {
	return &hub{ring: make([]Event, 0, keep), subs: map[*subscriber]struct{}{}, dropped: dropped, onEvent: onEvent}
}

// Record implements transcript.Sink.
func (h *hub) Record(e transcript.Entry) {
	h.publish(Event{Time: e.Time, Kind: eventKind(e), Service: e.Service, Session: e.Session, Remote: e.Remote, Dir: string(e.Dir), Text: e.Text})
}

func (h *hub) publish(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.seq++
	ev.Seq = h.seq
	if len(h.ring) < cap(h.ring) {
		h.ring = append(h.ring, ev)
	} else {
		h.ring[h.start] = ev
		h.start = (h.start + 1) % len(h.ring)
	}
	for s := range h.subs {
		select {
		case s.ch <- ev:
		default:
			s.dropped.Add(1)
			if h.dropped != nil {
				h.dropped.Add(1)
			}
		}
	}
	if h.onEvent != nil {
		h.onEvent(ev)
	}
}

// last returns the sequence number of the latest event.
func (h *hub) last() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seq
}

// since returns the kept events after seq, at most limit.
func (h *hub) since(seq uint64, limit int) []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sinceLocked(seq, limit)
}

func (h *hub) sinceLocked(seq uint64, limit int) []Event {
	var out []Event
	for i := range h.ring {
		ev := h.ring[(h.start+i)%len(h.ring)]
		if ev.Seq > seq {
			out = append(out, ev)
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

// subscribe returns the kept events after seq and a subscriber for what
// follows (taken under one lock: nothing falls between them); cancel
// releases it. The channel is closed when the hub closes.
func (h *hub) subscribe(seq uint64, buffer int) (backlog []Event, s *subscriber, cancel func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	backlog = h.sinceLocked(seq, cap(h.ring))
	s = &subscriber{ch: make(chan Event, buffer)}
	if h.closed {
		close(s.ch)
		return backlog, s, func() {}
	}
	h.subs[s] = struct{}{}
	return backlog, s, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[s]; ok {
			delete(h.subs, s)
			close(s.ch)
		}
	}
}

// close ends every subscription.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		close(s.ch)
	}
}
