package crypto

import (
	"errors"
	"strings"
)

// Every error Open and ReadAt return for bad input wraps one of these, so callers can map them
// to an errno or an exit status with errors.Is; the message says what is wrong and where.
var (
	// ErrMissingKey: the keyring does not hold the key the file names.
	ErrMissingKey = errors.New("missing key")
	// ErrWrongKey: a key was found but does not decrypt the file.
	ErrWrongKey = errors.New("wrong key")
	// ErrCorrupt: the file is truncated, damaged, or not what its name and magic say.
	ErrCorrupt = errors.New("corrupt")
	// ErrUnsupported: a well-formed file in a variant this version does not read.
	ErrUnsupported = errors.New("unsupported")
)

// Status names an outcome for people and for the status attribute: "ok", "missing key",
// "wrong key", "corrupt", "unsupported", or "error" for anything else (such as an I/O error).
func Status(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrMissingKey):
		return "missing key"
	case errors.Is(err, ErrWrongKey):
		return "wrong key"
	case errors.Is(err, ErrCorrupt):
		return "corrupt"
	case errors.Is(err, ErrUnsupported):
		return "unsupported"
	}
	return "error"
}

// Describe is Status with the reason: "ok", or for example "missing key: no key "X" in ...",
// without repeating the status the error message already starts with.
func Describe(err error) string {
	status := Status(err)
	if err == nil {
		return status
	}
	return status + ": " + strings.TrimPrefix(err.Error(), status+": ")
}
