package serve

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // pure-Go SQLite driver: CGO_ENABLED=0 keeps building
)

// Migrations are the schema steps of the serve database, applied in order
// once each; PRAGMA user_version holds how many ran. Add, never edit: a
// database made by an older maillab is brought up to date at Open. The
// console (classes, trainees, answers) appends its tables here.
var Migrations = []string{
	// 1: the labs wanted, with what a restart needs to give them back
	// unchanged (scenario, custom YAML, ports, runtime faults).
	`CREATE TABLE labs (
		id            TEXT PRIMARY KEY,
		created       TEXT NOT NULL,
		scenario      TEXT NOT NULL DEFAULT '',
		scenario_yaml TEXT NOT NULL DEFAULT '',
		ports         TEXT NOT NULL DEFAULT '{}',
		faults        TEXT NOT NULL DEFAULT '[]',
		next_fault    INTEGER NOT NULL DEFAULT 1
	)`,
	// 2-4: classes of trainees, each trainee with a secret key and
	// tickets; a ticket is one scenario in its own lab (labs.id) with the
	// trainee's progress: times, hints revealed and the one answer.
	`CREATE TABLE classes (
		id          TEXT PRIMARY KEY,
		name        TEXT NOT NULL,
		created     TEXT NOT NULL,
		scenarios   TEXT NOT NULL DEFAULT '[]',
		assignment  TEXT NOT NULL DEFAULT 'all',
		per_trainee INTEGER NOT NULL DEFAULT 1
	)`,
	`CREATE TABLE trainees (
		id       TEXT PRIMARY KEY,
		class_id TEXT NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
		pos      INTEGER NOT NULL,
		name     TEXT NOT NULL,
		key      TEXT NOT NULL UNIQUE
	)`,
	`CREATE TABLE tickets (
		id           TEXT PRIMARY KEY,
		trainee_id   TEXT NOT NULL REFERENCES trainees(id) ON DELETE CASCADE,
		pos          INTEGER NOT NULL,
		scenario     TEXT NOT NULL,
		lab_id       TEXT NOT NULL,
		opened_at    TEXT NOT NULL DEFAULT '',
		connected_at TEXT NOT NULL DEFAULT '',
		answered_at  TEXT NOT NULL DEFAULT '',
		hints_used   INTEGER NOT NULL DEFAULT 0,
		answer_code  TEXT NOT NULL DEFAULT '',
		answer_fix   TEXT NOT NULL DEFAULT ''
	)`,
}

// Store is the serve database: an embedded SQLite file in the data
// directory.
type Store struct {
	db *sql.DB
}

// OpenStore opens (creating if needed) DIR/maillab.db and applies the
// migrations it lacks.
func OpenStore(dir string) (*Store, error) {
	path := filepath.Join(dir, "maillab.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)")
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// One writer at a time is all SQLite does; one connection avoids
	// SQLITE_BUSY between our own connections.
	db.SetMaxOpenConns(1)
	s := &Store{db: db}
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return s, nil
}

// DB returns the database, for packages that add their own tables (the
// console) through Migrations.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) migrate(ctx context.Context) error {
	var version int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(Migrations) {
		return fmt.Errorf("schema version %d is newer than this maillab knows (%d): use a newer maillab", version, len(Migrations))
	}
	for i := version; i < len(Migrations); i++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, Migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		// PRAGMA takes no parameters; i+1 is our own integer.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	return nil
}

// labRecord is one row of labs.
type labRecord struct {
	ID           string
	Created      time.Time
	Scenario     string
	ScenarioYAML string
	Ports        map[string]int
	Faults       []FaultSpec
	NextFault    int
}

func (s *Store) insertLab(ctx context.Context, r *labRecord) error {
	ports, _ := json.Marshal(r.Ports)
	fs, _ := json.Marshal(r.Faults)
	_, err := s.db.ExecContext(ctx, `INSERT INTO labs (id, created, scenario, scenario_yaml, ports, faults, next_fault) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Created.UTC().Format(time.RFC3339Nano), r.Scenario, r.ScenarioYAML, string(ports), string(fs), r.NextFault)
	if err != nil {
		return fmt.Errorf("save lab %s: %w", r.ID, err)
	}
	return nil
}

func (s *Store) updateLab(ctx context.Context, r *labRecord) error {
	ports, _ := json.Marshal(r.Ports)
	fs, _ := json.Marshal(r.Faults)
	_, err := s.db.ExecContext(ctx, `UPDATE labs SET ports = ?, faults = ?, next_fault = ? WHERE id = ?`,
		string(ports), string(fs), r.NextFault, r.ID)
	if err != nil {
		return fmt.Errorf("save lab %s: %w", r.ID, err)
	}
	return nil
}

func (s *Store) deleteLab(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM labs WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete lab %s: %w", id, err)
	}
	return nil
}

func (s *Store) labs(ctx context.Context) ([]*labRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, created, scenario, scenario_yaml, ports, faults, next_fault FROM labs ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("read labs: %w", err)
	}
	defer rows.Close()
	var out []*labRecord
	for rows.Next() {
		var r labRecord
		var created, ports, fs string
		if err := rows.Scan(&r.ID, &created, &r.Scenario, &r.ScenarioYAML, &ports, &fs, &r.NextFault); err != nil {
			return nil, fmt.Errorf("read labs: %w", err)
		}
		r.Created, _ = time.Parse(time.RFC3339Nano, created)
		if err := errors.Join(json.Unmarshal([]byte(ports), &r.Ports), json.Unmarshal([]byte(fs), &r.Faults)); err != nil {
			return nil, fmt.Errorf("read lab %s: %w", r.ID, err)
		}
		out = append(out, &r)
	}
	return out, rows.Err()
}
