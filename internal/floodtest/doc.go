// Package floodtest floods the api's gateway webhook endpoints the way an
// attacker or a misbehaving gateway would (forged Toss webhooks naming
// guessed order ids, a signed PortOne delivery replayed), against the real
// api handler, a real relay working the outbox against gatewaysim, and a
// real Postgres, and holds the flood to what docs/design.md promises: at
// most one gateway lookup per payment per interval, no request lost, a
// replayed delivery acted on once. It has tests only.
package floodtest
