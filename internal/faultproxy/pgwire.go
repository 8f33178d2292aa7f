package faultproxy

import (
	"bytes"
	"encoding/binary"
	"strings"
)

// Just enough of the PostgreSQL wire protocol (v3) to find COMMITs going to
// the server and their CommandComplete coming back. Everything else passes
// through unparsed: a message the toxics do not care about is only framed.

// message is one protocol message as the framer saw it.
type message struct {
	// typ is the type byte; 0 for the untyped startup-phase messages
	// (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest).
	typ byte
	// body is the message without type and length: all of it, or its first
	// prefixLimit bytes when truncated.
	body      []byte
	truncated bool
	// single marks a one-byte answer to SSLRequest or GSSENCRequest, which
	// has no length: typ is the byte.
	single bool
}

// prefixLimit bounds what the framer keeps of a message before deciding on
// it. A COMMIT, a CommandComplete tag, a statement or portal name all fit;
// a longer message is none of the ones the toxics act on (bar the name at
// the start of a long Parse, which fits), so it streams through unbuffered.
const prefixLimit = 256

// framer cuts a byte stream into messages. It keeps the bytes of a message
// until it has seen enough of it to decide (all of it, or prefixLimit
// bytes), so the caller can forward whole messages and cut the stream
// exactly at a message boundary, whatever the chunks the bytes came in.
type framer struct {
	// untyped is whether the next message has no type byte: the first
	// message a client sends, and the one after an SSLRequest that was
	// answered 'N'.
	untyped bool
	// singles is how many one-byte answers (to SSLRequest or
	// GSSENCRequest) come next from the server.
	singles int
	buf     []byte // bytes not yet handed on, from a message boundary
	skip    int    // bytes of a long message still to pass through as they come
}

// feed takes the next chunk of the stream and calls handle for each message
// it completes (or has seen prefixLimit bytes of). It returns the bytes to
// pass on; when handle returns true (cut), it stops there and returns the
// bytes before that message, with cut true: the rest is never passed on.
func (f *framer) feed(chunk []byte, handle func(message) bool) (out []byte, cut bool) {
	if f.skip > 0 {
		n := min(f.skip, len(chunk))
		out = append(out, chunk[:n]...)
		f.skip -= n
		chunk = chunk[n:]
	}
	f.buf = append(f.buf, chunk...)
	for len(f.buf) > 0 {
		if f.singles > 0 {
			f.singles--
			if handle(message{typ: f.buf[0], single: true}) {
				return out, true
			}
			out = append(out, f.buf[0])
			f.buf = f.buf[1:]
			continue
		}
		hdr := 5
		if f.untyped {
			hdr = 4
		}
		if len(f.buf) < hdr {
			break
		}
		var typ byte
		length := int(binary.BigEndian.Uint32(f.buf[hdr-4 : hdr]))
		if !f.untyped {
			typ = f.buf[0]
		}
		// The length counts itself but not the type byte.
		total := hdr - 4 + length
		if length < 4 {
			// Not the protocol we know (or a stream already broken):
			// hand everything on and stop looking.
			out = append(out, f.buf...)
			f.buf = nil
			f.skip = int(^uint(0) >> 1)
			break
		}
		bodyLen := total - hdr
		m := message{typ: typ}
		switch {
		case len(f.buf) >= total:
			m.body = f.buf[hdr:total]
		case len(f.buf)-hdr >= prefixLimit:
			m.body, m.truncated = f.buf[hdr:hdr+prefixLimit], true
		default:
			return out, false // wait for more of this message
		}
		if f.untyped {
			f.untyped = false
		}
		if handle(m) {
			return out, true
		}
		if !m.truncated {
			out = append(out, f.buf[:total]...)
			f.buf = f.buf[total:]
			continue
		}
		// A long message: what is here goes on now, the rest as it comes.
		out = append(out, f.buf...)
		f.skip = hdr + bodyLen - len(f.buf)
		f.buf = nil
	}
	if len(f.buf) == 0 {
		f.buf = nil // let a big chunk's array go
	}
	return out, false
}

// Protocol codes of the untyped startup-phase requests.
const (
	codeCancelRequest = 80877102
	codeSSLRequest    = 80877103
	codeGSSENCRequest = 80877104
)

// cstring returns the NUL-terminated string at the start of b and the rest
// after the NUL; ok is false when b holds no NUL.
func cstring(b []byte) (s string, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, false
	}
	return string(b[:i]), b[i+1:], true
}

// isCommit reports whether sql is a statement that commits the open
// transaction: COMMIT or END, optionally WORK or TRANSACTION, in any case,
// with surrounding whitespace and a trailing semicolon. pgx's Tx.Commit
// sends "commit"; the rest is for other clients and hand-written SQL.
// COMMIT PREPARED (two-phase) and COMMIT AND CHAIN are not matched.
func isCommit(sql string) bool {
	sql = strings.TrimSpace(sql)
	sql = strings.TrimSpace(strings.TrimSuffix(sql, ";"))
	words := strings.Fields(strings.ToLower(sql))
	if len(words) == 0 || len(words) > 4 {
		return false
	}
	if words[0] != "commit" && words[0] != "end" {
		return false
	}
	rest := words[1:]
	if len(rest) > 0 && (rest[0] == "work" || rest[0] == "transaction") {
		rest = rest[1:]
	}
	// "AND NO CHAIN" is the default spelled out.
	return len(rest) == 0 || len(rest) == 3 && rest[0] == "and" && rest[1] == "no" && rest[2] == "chain"
}
