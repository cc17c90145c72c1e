package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

func catCommand() *cli.Command {
	return &cli.Command{
		Name:      "cat",
		Usage:     "write the plaintext of each file to standard output",
		ArgsUsage: "FILE...",
		Flags:     keyFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("cat: name at least one file")
			}
			keys, err := keySource(c)
			if err != nil {
				return err
			}
			failed := 0
			for _, path := range c.Args().Slice() {
				if err := catFile(os.Stdout, path, keys); err != nil {
					fmt.Fprintf(os.Stderr, "mysqllogfs: %s: %v\n", path, err)
					failed++
				}
			}
			return failures(failed)
		},
	}
}

const copyChunk = 1 << 20

// catFile streams one file's plaintext. Checks of the header, key and padding happen at open,
// so a file that cannot be decrypted writes nothing; damage found later in a compressed stream
// ends the output there with an error.
func catFile(out io.Writer, path string, keys keysrc.Source) error {
	f, err := crypto.OpenFile(path, keys, crypto.Options{})
	if err != nil {
		return err
	}
	defer f.Close()
	return pipe(out, f)
}

// pipe copies r to out in chunks, decrypting the next chunk while the last one is written.
func pipe(out io.Writer, r io.ReaderAt) error {
	type chunk struct {
		buf []byte
		err error
	}
	free, full := make(chan []byte, 2), make(chan chunk, 2)
	free <- make([]byte, copyChunk)
	free <- make([]byte, copyChunk)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(full)
		for off := int64(0); ; {
			var buf []byte
			select {
			case buf = <-free:
			case <-stop:
				return
			}
			n, err := r.ReadAt(buf, off)
			off += int64(n)
			if err == io.EOF {
				err = nil
				if n == 0 {
					return
				}
				full <- chunk{buf[:n], nil}
				return
			}
			full <- chunk{buf[:n], err}
			if err != nil {
				return
			}
		}
	}()
	for c := range full {
		if _, err := out.Write(c.buf); err != nil {
			return err
		}
		if c.err != nil {
			return c.err
		}
		free <- c.buf[:cap(c.buf)]
	}
	return nil
}
