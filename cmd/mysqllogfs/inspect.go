package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/crypto/source"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

// report is what inspect says of one file.
type report struct {
	Path      string `json:"path"`
	Kind      string `json:"kind"`
	PlainName string `json:"plain_name"`
	KeyID     string `json:"key_id,omitempty"`
	KeyFound  *bool  `json:"key_found,omitempty"`
	Size      *int64 `json:"plaintext_size,omitempty"`
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`
}

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "say what each file is, which key it needs, and whether it decrypts",
		ArgsUsage: "PATH...",
		Flags:     append(keyFlags(), &cli.BoolFlag{Name: "json", Usage: "print a JSON array"}),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("inspect: name at least one file or directory")
			}
			keys, err := keySource(c)
			if err != nil {
				return err
			}
			var reports []report
			err = eachFile(c.Args().Slice(), func(path string) { reports = append(reports, inspectFile(path, keys)) })
			if err != nil {
				return err
			}
			if err := printReports(reports, c.Bool("json")); err != nil {
				return err
			}
			failed := 0
			for _, r := range reports {
				if r.Status != "ok" && r.Status != statusUnfinished {
					failed++
				}
			}
			return failures(failed)
		},
	}
}

// eachFile calls fn for every regular file of the paths, directories walked.
func eachFile(paths []string, fn func(path string)) error {
	for _, root := range paths {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				fn(path)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// statusUnfinished marks an audit log without its final block or gzip trailer: one the server
// is still writing, or one cut short.
const statusUnfinished = "unfinished"

func inspectFile(path string, keys keysrc.Source) report {
	r := report{Path: path}
	head := make([]byte, crypto.HeadSize)
	if f, err := source.Open(path); err == nil {
		n, _ := f.ReadAt(head, 0)
		head = head[:n]
		f.Close()
	}
	info := crypto.Identify(filepath.Base(path), head)
	r.Kind, r.PlainName, r.KeyID = string(info.Kind), info.PlainName, info.KeyID

	f, err := crypto.OpenFile(path, keys, crypto.Options{})
	if err == nil {
		defer f.Close()
		err = f.Measure(context.Background())
		if f.Unfinished() {
			r.Status = statusUnfinished
		}
	}
	if info.Encrypted {
		found := !errors.Is(err, crypto.ErrMissingKey)
		r.KeyFound = &found
	}
	if err != nil {
		r.Status = crypto.Status(err)
		r.Reason = strings.TrimPrefix(crypto.Describe(err), r.Status+": ")
		return r
	}
	size := f.Size()
	r.Size = &size
	if r.Status == "" {
		r.Status = "ok"
	}
	return r
}

func printReports(reports []report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if reports == nil {
			reports = []report{}
		}
		return enc.Encode(reports)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PATH\tKIND\tPLAINTEXT NAME\tKEY ID\tKEY\tSIZE\tSTATUS")
	for _, r := range reports {
		key, size, status := "-", "-", r.Status
		if r.KeyFound != nil {
			key = map[bool]string{true: "found", false: "missing"}[*r.KeyFound]
		}
		if r.Size != nil {
			size = fmt.Sprint(*r.Size)
		}
		if r.Reason != "" {
			status += ": " + r.Reason
		}
		keyID := r.KeyID
		if keyID == "" {
			keyID = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", quoteOdd(r.Path), r.Kind, quoteOdd(r.PlainName), quoteOdd(keyID), key, size, quoteOdd(status))
	}
	return w.Flush()
}

// quoteOdd quotes a name holding control characters (a newline, a tab), which would break the
// table's lines and columns; ordinary names are shown as they are.
func quoteOdd(s string) string {
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
