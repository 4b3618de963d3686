// Package docstest checks the user documentation (README.md and docs/*.md)
// against the code: its tests resolve every relative link and #anchor, and
// run the shell examples that start nothing long-running against a freshly
// built maillab binary. A fenced sh block that must not run is marked with
// the HTML comment "<!-- docstest: skip: REASON -->" on the line before it.
package docstest
