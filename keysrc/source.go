// Package keysrc answers one question for the decryption engine: "the key with this ID". Each
// backend (keyring_file plugin data, component_keyring_file JSON, Percona's encrypted keyring,
// a directory of key files, an external command) lives in its own file behind Source.
package keysrc

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Key is one keyring entry.
type Key struct {
	ID    string
	Owner string // the user ID; "" for the server's own keys and for formats without owners
	Type  string // "AES", "SECRET", ...; "" where the format does not record it
	Value []byte
}

// AnyOwner, as the owner of a Lookup, matches a key whatever its owner. MySQL user IDs never
// take this form.
const AnyOwner = "*"

// ErrNotFound is wrapped by every error that means "this source does not hold that key".
var ErrNotFound = errors.New("key not found")

// Source is a place keys come from.
type Source interface {
	// Lookup returns the key with this ID and owner (AnyOwner matches every owner). Sources
	// whose format has no owners ignore owner.
	Lookup(id, owner string) (Key, error)
	// List returns every key the source holds, or an error for sources that cannot list
	// (an external command).
	List() ([]Key, error)
	// String names the source for messages: a path or a command name, never a secret.
	String() string
}

// ErrCannotList is returned by List for sources that only answer look-ups.
var ErrCannotList = errors.New("this key source can only look keys up, not list them")

// ValidID refuses key IDs that no keyring holds and that a command line or a file name would
// mangle: empty ones, and ones holding a NUL byte.
func ValidID(id string) error {
	switch {
	case id == "":
		return errors.New("invalid key ID: empty")
	case strings.ContainsRune(id, 0):
		return fmt.Errorf("invalid key ID %q: it holds a NUL byte", id)
	}
	return nil
}

// NotFoundError says which source lacks which key; it matches ErrNotFound.
type NotFoundError struct {
	ID    string
	Where string // the source, or why none was asked
}

func (e *NotFoundError) Error() string        { return fmt.Sprintf("no key %q in %s", e.ID, e.Where) }
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

func notFound(src Source, id string) error { return &NotFoundError{ID: id, Where: src.String()} }

// findKey picks the first key in keys with this ID whose owner matches.
func findKey(src Source, keys []Key, id, owner string) (Key, error) {
	for _, k := range keys {
		if k.ID == id && (owner == AnyOwner || k.Owner == owner) {
			return k, nil
		}
	}
	return Key{}, notFound(src, id)
}

// trimTextNewline drops one trailing newline from a value that is text, so a password written
// with `echo` works; binary key material is taken byte for byte.
func trimTextNewline(b []byte) []byte {
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if len(s) == len(b) || !utf8.ValidString(s) {
		return b
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' {
			return b
		}
	}
	return b[:len(s)]
}
