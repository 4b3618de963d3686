package console

import (
	"encoding/json"
	"time"
)

// The API's JSON, as far as the pages use it (serve/openapi.json
// describes it whole). Unknown fields are ignored: the API may add more.

type scenario struct {
	Name      string `json:"name"`
	Title     string `json:"title"`
	Section   string `json:"section"`
	RootCause string `json:"root_cause"`
	Story     string `json:"story"`
	Fix       string `json:"fix"`
	Cause     string `json:"cause"`
	Symptoms  string `json:"symptoms"`
}

type service struct {
	Host     string `json:"host"`
	Address  string `json:"address"`
	Port     int    `json:"port"`
	Security string `json:"security"`
}

type account struct {
	Email    string `json:"email"`
	Username string `json:"username"`
	Password string `json:"password"`
}

type settings struct {
	Domain   string             `json:"domain"`
	Resolver string             `json:"resolver"`
	Accounts []account          `json:"accounts"`
	Services map[string]service `json:"services"`
}

type faultSpec struct {
	ID               string         `json:"id"`
	Type             string         `json:"type"`
	Services         []string       `json:"services"`
	AfterConnections int            `json:"after_connections"`
	OneIn            int            `json:"one_in"`
	Params           map[string]any `json:"params"`
	Origin           string         `json:"origin"`
}

type faultType struct {
	Name    string         `json:"name"`
	Summary string         `json:"summary"`
	Layer   string         `json:"layer"`
	Knobs   []string       `json:"knobs"`
	Params  map[string]any `json:"params"`
}

type faultChange struct {
	Fault     *faultSpec `json:"fault"`
	Restarted bool       `json:"restarted"`
	Services  []string   `json:"services"`
}

type labInfo struct {
	ID                string         `json:"id"`
	Scenario          string         `json:"scenario"`
	ExpectedRootCause string         `json:"expected_root_cause"`
	Created           time.Time      `json:"created"`
	Running           bool           `json:"running"`
	Ports             map[string]int `json:"ports"`
	Faults            []faultSpec    `json:"faults"`
	Settings          settings       `json:"settings"`
	Lab               settings       `json:"lab"`
}

type event struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Service string    `json:"service"`
	Session uint64    `json:"session"`
	Dir     string    `json:"dir"`
	Text    string    `json:"text"`
}

type messageSummary struct {
	ID      string    `json:"id"`
	Account string    `json:"account"`
	Mailbox string    `json:"mailbox"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Subject string    `json:"subject"`
	Date    time.Time `json:"date"`
	Size    int64     `json:"size"`
}

type accountMessages struct {
	Account  string           `json:"account"`
	Messages []messageSummary `json:"messages"`
}

type header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type attachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

type message struct {
	messageSummary
	Headers     []header     `json:"headers"`
	Text        []string     `json:"text"`
	HTML        []string     `json:"html"`
	Attachments []attachment `json:"attachments"`
	ParseError  string       `json:"parse_error"`
}

type step struct {
	Step     string `json:"step"`
	OK       bool   `json:"ok"`
	Code     string `json:"code"`
	Evidence string `json:"evidence"`
	Skipped  bool   `json:"skipped"`
}

type serviceReport struct {
	Service  string `json:"service"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Security string `json:"security"`
	OK       bool   `json:"ok"`
	Steps    []step `json:"steps"`
}

type report struct {
	RootCause string          `json:"root_cause"`
	Summary   string          `json:"summary"`
	Fix       string          `json:"fix"`
	Services  []serviceReport `json:"services"`
}

type rootCause struct {
	Code       string `json:"code"`
	Title      string `json:"title"`
	Layer      string `json:"layer"`
	LayerTitle string `json:"layer_title"`
	Meaning    string `json:"meaning"`
}

type answer struct {
	Code string `json:"code"`
	Fix  string `json:"fix"`
}

type ticket struct {
	ID                string     `json:"id"`
	TraineeID         string     `json:"trainee_id,omitempty"`
	Scenario          string     `json:"scenario"`
	Title             string     `json:"title"`
	LabID             string     `json:"lab_id"`
	Status            string     `json:"status"`
	OpenedAt          *time.Time `json:"opened_at"`
	ConnectedAt       *time.Time `json:"connected_at"`
	AnsweredAt        *time.Time `json:"answered_at"`
	Seconds           *float64   `json:"seconds"`
	HintsUsed         int        `json:"hints_used"`
	Answer            *answer    `json:"answer"`
	Right             *bool      `json:"right"`
	ExpectedRootCause string     `json:"expected_root_cause"`
	Score             *int       `json:"score"`
}

type trainee struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Key     string   `json:"key"`
	Link    string   `json:"link"`
	Tickets []ticket `json:"tickets"`
}

type class struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Created   time.Time `json:"created"`
	Scenarios []string  `json:"scenarios"`
	Trainees  []trainee `json:"trainees"`
}

type debriefAnswer struct {
	Trainee   string   `json:"trainee"`
	Code      string   `json:"code"`
	Right     *bool    `json:"right"`
	Fix       string   `json:"fix"`
	Seconds   *float64 `json:"seconds"`
	HintsUsed int      `json:"hints_used"`
}

type debriefScenario struct {
	Scenario          string          `json:"scenario"`
	Title             string          `json:"title"`
	Story             string          `json:"story"`
	Cause             string          `json:"cause"`
	Symptoms          string          `json:"symptoms"`
	Fix               string          `json:"fix"`
	ExpectedRootCause string          `json:"expected_root_cause"`
	Answers           []debriefAnswer `json:"answers"`
}

type traineeTicketSummary struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Status   string `json:"status"`
	Answered bool   `json:"answered"`
	Right    *bool  `json:"right"`
}

type traineeHome struct {
	Name    string                 `json:"name"`
	Class   string                 `json:"class"`
	Tickets []traineeTicketSummary `json:"tickets"`
}

type traineeDebrief struct {
	Cause    string `json:"cause"`
	Symptoms string `json:"symptoms"`
	Fix      string `json:"fix"`
}

type traineeTicket struct {
	ID                string          `json:"id"`
	Title             string          `json:"title"`
	Story             string          `json:"story"`
	Status            string          `json:"status"`
	Card              json.RawMessage `json:"card"`
	Settings          settings        `json:"settings"`
	DNS               string          `json:"dns"`
	Hints             []string        `json:"hints"`
	HintsLeft         int             `json:"hints_left"`
	Answered          bool            `json:"answered"`
	Answer            json.RawMessage `json:"answer"`
	Right             *bool           `json:"right"`
	ExpectedRootCause string          `json:"expected_root_cause"`
	Score             *int            `json:"score"`
	Debrief           *traineeDebrief `json:"debrief"`
}
