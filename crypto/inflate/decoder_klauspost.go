//go:build klauspost_inflate

package inflate

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/flate"
)

// newDecoder is klauspost/compress's inflater behind the same checkpoints, for measuring the
// project's own against it (go build -tags klauspost_inflate).
func newDecoder(_ io.Reader, br *bufio.Reader, cp *inflateCheckpoint, onBlockEnd func(inflateCheckpoint)) io.Reader {
	var opts []flate.ReaderOpt
	if cp != nil {
		opts = append(opts, flate.WithResumeFrom(flate.InflateCheckpoint{
			UncompressedOffset: cp.uoff, CompressedOffset: cp.bit / 8, BitOffset: uint8(cp.bit % 8), Window: cp.window,
		}))
	}
	if onBlockEnd != nil {
		opts = append(opts, flate.WithEobCallback(func(k flate.InflateCheckpoint) {
			onBlockEnd(inflateCheckpoint{uoff: k.UncompressedOffset, bit: k.CompressedOffset*8 + int64(k.BitOffset), window: k.Window})
		}))
	}
	return &klauspostDecoder{flate.NewReaderOpts(br, opts...)}
}

// klauspostDecoder reports klauspost's data errors as errDeflate, as the own inflater does.
type klauspostDecoder struct{ r io.Reader }

func (d *klauspostDecoder) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	var corrupt flate.CorruptInputError
	if errors.As(err, &corrupt) {
		err = fmt.Errorf("%w: %v", errDeflate, err)
	}
	return n, err
}
