package serve

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// class is a group of trainees working on scenarios, each ticket in its
// own lab. The Server keeps every class in memory (guarded by
// Server.classMu) and writes each change through to the database.
type class struct {
	ID         string
	Name       string
	Created    time.Time
	Scenarios  []string
	Assignment string
	PerTrainee int
	Trainees   []*trainee
	// hub carries the class's "ticket" events (Event.data is the ticket).
	hub *hub
}

// trainee is one person of a class; Key, the secret in their personal
// link, is their only credential.
type trainee struct {
	ID, Name, Key string
	class         *class
	Tickets       []*ticket
}

// ticket is one scenario for one trainee, in its own lab.
type ticket struct {
	ID, Scenario, LabID string
	trainee             *trainee
	// Zero times: not yet.
	OpenedAt, ConnectedAt, AnsweredAt time.Time
	HintsUsed                         int
	AnswerCode, AnswerFix             string
}

func (t *ticket) answered() bool { return !t.AnsweredAt.IsZero() }

// timeText is how the class tables keep a time: RFC 3339, "" for none.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// insertClass saves a new class with its trainees and tickets in one
// transaction.
func (s *Store) insertClass(ctx context.Context, c *class) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save class %s: %w", c.ID, err)
	}
	defer tx.Rollback()
	scs, _ := json.Marshal(c.Scenarios)
	if _, err := tx.ExecContext(ctx, `INSERT INTO classes (id, name, created, scenarios, assignment, per_trainee) VALUES (?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, timeText(c.Created), string(scs), c.Assignment, c.PerTrainee); err != nil {
		return fmt.Errorf("save class %s: %w", c.ID, err)
	}
	for i, tr := range c.Trainees {
		if _, err := tx.ExecContext(ctx, `INSERT INTO trainees (id, class_id, pos, name, key) VALUES (?, ?, ?, ?, ?)`,
			tr.ID, c.ID, i, tr.Name, tr.Key); err != nil {
			return fmt.Errorf("save trainee %s: %w", tr.ID, err)
		}
		for j, t := range tr.Tickets {
			if _, err := tx.ExecContext(ctx, `INSERT INTO tickets (id, trainee_id, pos, scenario, lab_id) VALUES (?, ?, ?, ?, ?)`,
				t.ID, tr.ID, j, t.Scenario, t.LabID); err != nil {
				return fmt.Errorf("save ticket %s: %w", t.ID, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save class %s: %w", c.ID, err)
	}
	return nil
}

// updateTicket saves a ticket's progress.
func (s *Store) updateTicket(ctx context.Context, t *ticket) error {
	_, err := s.db.ExecContext(ctx, `UPDATE tickets SET opened_at = ?, connected_at = ?, answered_at = ?, hints_used = ?, answer_code = ?, answer_fix = ? WHERE id = ?`,
		timeText(t.OpenedAt), timeText(t.ConnectedAt), timeText(t.AnsweredAt), t.HintsUsed, t.AnswerCode, t.AnswerFix, t.ID)
	if err != nil {
		return fmt.Errorf("save ticket %s: %w", t.ID, err)
	}
	return nil
}

// deleteClass deletes the class; its trainees and tickets go with it.
func (s *Store) deleteClass(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM classes WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete class %s: %w", id, err)
	}
	return nil
}

// classes reads every class with its trainees and tickets, oldest first.
func (s *Store) classes(ctx context.Context) ([]*class, error) {
	var out []*class
	byID := map[string]*class{}
	err := s.query(ctx, `SELECT id, name, created, scenarios, assignment, per_trainee FROM classes ORDER BY created, id`, func(rows *sql.Rows) error {
		c := &class{}
		var created, scs string
		if err := rows.Scan(&c.ID, &c.Name, &created, &scs, &c.Assignment, &c.PerTrainee); err != nil {
			return err
		}
		c.Created = parseTime(created)
		if err := json.Unmarshal([]byte(scs), &c.Scenarios); err != nil {
			return fmt.Errorf("class %s: scenarios: %w", c.ID, err)
		}
		out = append(out, c)
		byID[c.ID] = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read classes: %w", err)
	}
	trainees := map[string]*trainee{}
	err = s.query(ctx, `SELECT id, class_id, name, key FROM trainees ORDER BY class_id, pos`, func(rows *sql.Rows) error {
		tr := &trainee{}
		var cid string
		if err := rows.Scan(&tr.ID, &cid, &tr.Name, &tr.Key); err != nil {
			return err
		}
		c := byID[cid]
		if c == nil {
			return nil
		}
		tr.class = c
		c.Trainees = append(c.Trainees, tr)
		trainees[tr.ID] = tr
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read trainees: %w", err)
	}
	err = s.query(ctx, `SELECT id, trainee_id, scenario, lab_id, opened_at, connected_at, answered_at, hints_used, answer_code, answer_fix FROM tickets ORDER BY trainee_id, pos`, func(rows *sql.Rows) error {
		t := &ticket{}
		var tid, opened, connected, answered string
		if err := rows.Scan(&t.ID, &tid, &t.Scenario, &t.LabID, &opened, &connected, &answered, &t.HintsUsed, &t.AnswerCode, &t.AnswerFix); err != nil {
			return err
		}
		tr := trainees[tid]
		if tr == nil {
			return nil
		}
		t.OpenedAt, t.ConnectedAt, t.AnsweredAt = parseTime(opened), parseTime(connected), parseTime(answered)
		t.trainee = tr
		tr.Tickets = append(tr.Tickets, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read tickets: %w", err)
	}
	return out, nil
}

func (s *Store) query(ctx context.Context, q string, row func(*sql.Rows) error) error {
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
