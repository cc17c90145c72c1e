package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/mysqllogfs/mysqllogfs/crypto"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "read each file end to end and check it: binlog event checksums and positions, audit log padding and gzip checksums",
		ArgsUsage: "PATH...",
		Flags: append(keyFlags(), &cli.StringFlag{Name: "manifest",
			Usage: "write a JSON chain-of-custody record: per file, source path, size, mtime, SHA-256 of source and plaintext, key ID, plaintext size"}),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("verify: name at least one file or directory")
			}
			keys, err := keySource(c)
			if err != nil {
				return err
			}
			var records []crypto.Verification
			failed := 0
			bar := newProgress("verify", sizeOfFiles(c.Args().Slice()))
			defer bar.finish()
			err = eachFile(c.Args().Slice(), func(path string) {
				v := crypto.Verify(path, keys, bar.at)
				records = append(records, v)
				bar.fileDone(v.Size)
				bar.print(func() {
					if v.Err != nil {
						failed++
						fmt.Printf("FAIL %s: %s\n", path, v.Status)
					} else {
						fmt.Printf("ok   %s (%s, %d plaintext bytes%s%s)\n", path, v.Kind, v.PlainSize, eventCount(v), unfinished(v))
					}
				})
			})
			if err != nil {
				return err
			}
			if manifest := c.String("manifest"); manifest != "" {
				if err := writeManifest(manifest, records); err != nil {
					return err
				}
			}
			return failures(failed)
		},
	}
}

func unfinished(v crypto.Verification) string {
	if !v.Unfinished {
		return ""
	}
	return "; unfinished: an active log without its end, read up to its last complete block"
}

func eventCount(v crypto.Verification) string {
	if v.Events == 0 {
		return ""
	}
	return fmt.Sprintf(", %d events", v.Events)
}

func writeManifest(path string, records []crypto.Verification) error {
	if records == nil {
		records = []crypto.Verification{}
	}
	out, err := json.MarshalIndent(records, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(out, '\n'), 0o600)
}
