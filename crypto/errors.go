package crypto

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"syscall"
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
// "wrong key", "corrupt", "unsupported", "I/O error" (the source could not be read), or
// "error" for anything else.
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
	case isIOError(err):
		return "I/O error"
	}
	return "error"
}

// isIOError reports whether err came from reading the source (a disk error, a closed file),
// as opposed to what the bytes say.
func isIOError(err error) bool {
	var errno syscall.Errno
	var pathErr *fs.PathError
	return errors.As(err, &errno) || errors.As(err, &pathErr) || errors.Is(err, fs.ErrClosed) || errors.Is(err, ErrClosed)
}

// readError says what a failed read of the source at where means: a file that ends early is
// damaged (truncated); any other failure is reported as itself, never as damage.
func readError(err error, where string, args ...any) error {
	what := fmt.Sprintf(where, args...)
	if isIOError(err) || !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: the file ends early", ErrCorrupt, what)
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
