package crypto

import "errors"

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
