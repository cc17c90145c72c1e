package keysrc

import (
	"errors"
	"strings"
)

// Chain tries several sources in order and returns the first key found.
type Chain []Source

// Lookup asks each source in turn. A source that fails for another reason than "not found"
// (an unreadable file, a failing command) does not hide a key that a later source holds; its
// error is reported when no source has the key.
func (c Chain) Lookup(id, owner string) (Key, error) {
	if err := ValidID(id); err != nil {
		return Key{}, err
	}
	var failures []error
	for _, src := range c {
		k, err := src.Lookup(id, owner)
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, ErrNotFound) {
			failures = append(failures, err)
		}
	}
	if len(failures) > 0 {
		return Key{}, errors.Join(failures...)
	}
	if len(c) == 0 {
		return Key{}, &NotFoundError{ID: id, Where: "any source: none was given (" + NoSourceHint() + ")"}
	}
	return Key{}, notFound(c, id)
}

// List concatenates what every listable source holds.
func (c Chain) List() ([]Key, error) {
	var all []Key
	for _, src := range c {
		keys, err := src.List()
		if errors.Is(err, ErrCannotList) {
			continue
		}
		if err != nil {
			return nil, err
		}
		all = append(all, keys...)
	}
	return all, nil
}

func (c Chain) String() string {
	names := make([]string, len(c))
	for i, src := range c {
		names[i] = src.String()
	}
	return strings.Join(names, ", ")
}
