//go:build e2e

// Package console drives the web console of `maillab serve` in Debian's
// headless Chromium through the DevTools protocol (github.com/chromedp/chromedp),
// as a trainer and a trainee would: the trainer opens the URL serve
// prints (the token becomes a cookie), creates a class through the form
// and watches the live board and a lab's live transcript; the trainee, in
// a browser context of their own without the cookie, opens the personal
// link, runs real curl against the ticket's customer settings and answers.
// The mailbox viewer is fed with real swaks, including a message whose
// HTML carries a script that must not run.
//
// TestPrintCard prints the settings card (lab view, ticket) on one A4
// and one Letter sheet. TestKeyboard creates a class with the keyboard
// alone and checks that every focus stop shows; TestClassFormErrors
// sends the class form wrong.
// Every tab fails its test on an uncaught script exception or a script
// or Content-Security-Policy error the page logs.
//
// Elements are found only through the console's data-test attributes
// (and the form fields' names): they are a fixed contract between the
// console's templates and these tests, so a redesign of the pages keeps
// them and these tests keep passing.
//
// Run: go test -race -tags e2e ./e2e/console/
//
// scripts/screenshots.sh regenerates docs/screenshots/console-*.png
// through TestScreenshots (MAILLAB_SCREENSHOTS=DIR).
//
// Chromium, curl and swaks are Debian packages (chromium, curl, swaks
// with libnet-ssleay-perl); a missing one skips the tests that need it
// with a one-line reason, except when CI=true, where it fails them.
package console
