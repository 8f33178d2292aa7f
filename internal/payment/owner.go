package payment

import "fmt"

// Owner names the checkout service a payment belongs to: the owner of the
// API key that created it. A checkout's key acts on its owner's payments
// only; docs/design.md ("Owners") gives the rule and why it answers 404,
// never 403, for the others. The values are stored, so an owner is never
// renamed.
type Owner string

// DefaultOwner is the owner every deployment starts with, and every key,
// payment and endpoint made before owners existed belongs to: a deployment
// serving one checkout never needs another.
const DefaultOwner Owner = "default"

// orDefault is o, or DefaultOwner for the zero Owner.
func (o Owner) orDefault() Owner {
	if o == "" {
		return DefaultOwner
	}
	return o
}

// OwnerMaxLen bounds an owner's name.
const OwnerMaxLen = 63

// ValidateOwner checks an owner's name: 1 to 63 characters of lower-case
// letters, digits, '.', '_' and '-', starting with a letter or digit. The
// names are typed by people and show in listings and logs, so they are kept
// plain; the migration's check says the same.
func ValidateOwner(name string) error {
	bad := fmt.Errorf("owner must be 1 to %d characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit, not %q", OwnerMaxLen, name)
	if name == "" || len(name) > OwnerMaxLen {
		return bad
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return bad
		}
	}
	return nil
}

// Reach is whose payments (and webhook endpoints) a caller may see and act
// on: one owner's, or every owner's. Its zero value reaches every owner, as
// operators and the relay do; a checkout's key reaches its owner's only
// (OwnerOnly).
type Reach struct {
	owner Owner
}

// Everyone is the reach of operators, read-only keys and the relay.
func Everyone() Reach { return Reach{} }

// OwnerOnly is the reach of a checkout key of owner o.
func OwnerOnly(o Owner) Reach { return Reach{owner: o} }

// Covers reports whether a payment or endpoint of owner o is within reach.
// A payment out of reach does not exist for the caller: not found, never
// forbidden, so that a guessed id tells nothing.
func (r Reach) Covers(o Owner) bool { return r.owner == "" || r.owner == o }

// Owner returns the one owner reached, and false when every owner is: what
// the store filters its reads and writes by.
func (r Reach) Owner() (Owner, bool) { return r.owner, r.owner != "" }
