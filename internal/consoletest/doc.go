// Package consoletest drives the operator console (/console) in a real
// browser: Debian's chromium, headless, through chromedp, against the real
// api handler, a real relay working the outbox against gatewaysim, and a
// real Postgres. It has tests only.
//
// Without a chromium on the machine the tests skip with a message saying
// how to install it, except in CI (CI=true), where they fail: a console
// that was never driven must not pass as tested. `make test` installs
// chromium first where it can (apt-get, as root).
package consoletest
