package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

// keyEntry is what keys shows of a key: never its value.
type keyEntry struct {
	ID     string `json:"id"`
	Owner  string `json:"owner"`
	Type   string `json:"type"`
	Length int    `json:"length"`
}

func keysCommand() *cli.Command {
	return &cli.Command{
		Name:  "keys",
		Usage: "list the IDs, owners, types and lengths of the keys the sources hold (never values)",
		Flags: append(keyFlags(), &cli.BoolFlag{Name: "json", Usage: "print a JSON array"}),
		Action: func(c *cli.Context) error {
			chain, err := keySource(c)
			if err != nil {
				return err
			}
			if len(chain) == 0 {
				return fmt.Errorf("keys: no key source given (%s)", keysrc.NoSourceHint())
			}
			keys, err := chain.List()
			if err != nil {
				return err
			}
			entries := []keyEntry{}
			for _, k := range keys {
				entries = append(entries, keyEntry{k.ID, k.Owner, k.Type, len(k.Value)})
			}
			if c.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(entries)
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tOWNER\tTYPE\tLENGTH")
			for _, e := range entries {
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", e.ID, e.Owner, e.Type, e.Length)
			}
			return w.Flush()
		},
	}
}
