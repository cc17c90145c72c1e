//go:build !klauspost_inflate

package inflate

import (
	"bufio"
	"io"
)

// newDecoder starts decoding a deflate stream at its beginning, or at checkpoint cp, with the
// project's own inflater. Building with -tags klauspost_inflate uses klauspost/compress's
// instead, for the end-to-end comparison docs/performance.md records.
func newDecoder(br *bufio.Reader, cp *inflateCheckpoint, onBlockEnd func(inflateCheckpoint)) io.Reader {
	return newInflater(br, cp, onBlockEnd)
}
