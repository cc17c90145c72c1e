//go:build !klauspost_inflate

package inflate

import (
	"bufio"
	"io"
)

// newDecoder starts decoding a deflate stream at its beginning, or at checkpoint cp, with the
// project's own inflater, reusing prev's buffers when it has one. Building with -tags
// klauspost_inflate uses klauspost/compress's instead, for the end-to-end comparison
// docs/performance.md records.
func newDecoder(prev io.Reader, br *bufio.Reader, cp *inflateCheckpoint, onBlockEnd func(inflateCheckpoint)) io.Reader {
	if f, ok := prev.(*inflater); ok {
		return f.reset(br, cp, onBlockEnd)
	}
	return newInflater(br, cp, onBlockEnd)
}
