package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/crypto/events"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

func eventsCommand() *cli.Command {
	return &cli.Command{
		Name:      "events",
		Usage:     "write each binlog event and audit record as one JSON object per line",
		ArgsUsage: "FILE...",
		Flags: append(keyFlags(),
			&cli.StringFlag{Name: "start-datetime", Usage: "only events at or after this time (UTC, \"2006-01-02 15:04:05\" or RFC 3339)"},
			&cli.StringFlag{Name: "stop-datetime", Usage: "only events before this time (UTC, as --start-datetime)"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("events: name at least one file")
			}
			var opts events.Options
			var err error
			if opts.Start, err = parseDatetime(c.String("start-datetime")); err != nil {
				return err
			}
			if opts.Stop, err = parseDatetime(c.String("stop-datetime")); err != nil {
				return err
			}
			keys, err := keySource(c)
			if err != nil {
				return err
			}
			out, err := eventsOutput()
			if err != nil {
				return err
			}
			var bar *progress
			if !term.IsTerminal(int(out.Fd())) { // events on the terminal leave no room for a bar
				bar = newProgress("events", sizeOfFiles(c.Args().Slice()))
			}
			defer bar.finish()
			failed := 0
			for _, path := range c.Args().Slice() {
				size := sizeOfFiles([]string{path})
				if err := eventsOf(out, path, keys, opts, func(share float64) { bar.at(int64(share * float64(size))) }); err != nil {
					bar.print(func() { fmt.Fprintf(os.Stderr, "mysqllogfs: %s: %v\n", path, err) })
					failed++
				}
				bar.fileDone(size)
			}
			return failures(failed)
		},
	}
}

// eventsOf decodes one file's plaintext as it is decrypted, telling done the share of the
// plaintext read so far.
func eventsOf(out io.Writer, path string, keys keysrc.Source, opts events.Options, done func(share float64)) error {
	f, err := crypto.OpenFile(path, keys, crypto.Options{})
	if err != nil {
		return err
	}
	defer f.Close()
	opts.File, opts.Unfinished = f.PlainName, crypto.MayBeUnfinished(f.PlainName)
	plain := &countingReader{r: io.NewSectionReader(f, 0, math.MaxInt64), done: func(n int64) { done(float64(n) / float64(max(f.Size(), n, 1))) }}
	return events.Write(out, plain, opts)
}

// countingReader tells done how many bytes were read through it.
type countingReader struct {
	r    io.Reader
	n    int64
	done func(n int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.done(c.n)
	return n, err
}

// eventsOutput is standard output on a descriptor of its own, with descriptor 1 moved to
// standard error: go-mysql prints some decoding failures to standard output, where they
// would land in the middle of a line of events.
func eventsOutput() (*os.File, error) {
	fd, err := unix.Dup(1)
	if err != nil {
		return nil, err
	}
	if err := unix.Dup2(2, 1); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "stdout"), nil
}

// parseDatetime reads a time bound; "" is none.
func parseDatetime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", time.RFC3339, "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot read the time %q: give \"2006-01-02 15:04:05\" (UTC) or RFC 3339", s)
}
