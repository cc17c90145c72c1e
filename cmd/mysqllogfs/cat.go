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
			buf := make([]byte, copyChunk)
			failed := 0
			for _, path := range c.Args().Slice() {
				if err := catFile(os.Stdout, path, keys, buf); err != nil {
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
func catFile(out io.Writer, path string, keys keysrc.Source, buf []byte) error {
	f, err := crypto.OpenFile(path, keys, crypto.Options{})
	if err != nil {
		return err
	}
	defer f.Close()
	ahead := crypto.NewAhead(f, false) // decrypting the next chunk while this one is written
	defer ahead.Close()
	// Hide the writer's ReadFrom: *os.File's would copy in 32 KiB steps instead of buf's.
	_, err = io.CopyBuffer(struct{ io.Writer }{out}, io.NewSectionReader(ahead, 0, 1<<62), buf)
	return err
}
