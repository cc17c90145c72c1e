package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/mysqllogfs/mysqllogfs/fs"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

// keyFlags are the key source flags every command shares, built from keysrc's table: each
// source's flag, then the flags for its password file and timeout. None takes a secret:
// secrets come from files, the environment or the key command.
func keyFlags() []cli.Flag {
	var flags []cli.Flag
	for _, b := range keysrc.Backends {
		if b.Repeatable {
			flags = append(flags, &cli.StringSliceFlag{Name: b.Flag, EnvVars: []string{b.Env}, Usage: b.Usage + "; repeatable"})
		} else {
			flags = append(flags, &cli.StringFlag{Name: b.Flag, EnvVars: []string{b.Env}, Usage: b.Usage})
		}
		if s := b.Secret; s != nil {
			flags = append(flags, &cli.StringFlag{Name: s.FileFlag, EnvVars: []string{s.FileEnv},
				Usage: s.Usage + " (or set " + s.Env + ")"})
		}
		for _, t := range []*keysrc.Timeout{b.Timeout, b.Retry} {
			if t != nil {
				flags = append(flags, &cli.DurationFlag{Name: t.Flag, EnvVars: []string{t.Env}, Value: t.Default, Usage: t.Usage})
			}
		}
	}
	return flags
}

// keySource chains the sources the flags name, in the table's order.
func keySource(c *cli.Context) (keysrc.Chain, error) { return countedKeySource(c, nil) }

// countedKeySource is keySource with each source's lookups counted in m, under its flag.
func countedKeySource(c *cli.Context, m *fs.Metrics) (keysrc.Chain, error) {
	var chain keysrc.Chain
	for _, b := range keysrc.Backends {
		values := sourceValues(c, b)
		if len(values) == 0 {
			continue
		}
		var with keysrc.Settings
		if s := b.Secret; s != nil {
			with.Secret = secret(c.String(s.FileFlag), s.Env, "--"+s.FileFlag)
		}
		if t := b.Timeout; t != nil {
			with.Timeout = c.Duration(t.Flag)
		}
		if t := b.Retry; t != nil {
			with.Retry = c.Duration(t.Flag)
		}
		sources, err := b.Open(values, with)
		if err != nil {
			return nil, err
		}
		for _, s := range sources {
			chain = append(chain, m.CountLookups(b.Flag, s))
		}
	}
	return chain, nil
}

// sourceValues are what a backend's flag (or its environment variable) was given.
func sourceValues(c *cli.Context, b keysrc.Backend) []string {
	if b.Repeatable {
		return c.StringSlice(b.Flag)
	}
	if v := c.String(b.Flag); v != "" {
		return []string{v}
	}
	return nil
}

// secret reads a password when it is needed: from the file (trailing CR/LF dropped), else
// from the environment variable. MariaDB's "FILE:/path" form of a filekey is followed.
func secret(file, env, flag string) func() ([]byte, error) {
	return func() ([]byte, error) {
		if file != "" {
			b, err := os.ReadFile(file)
			if err != nil {
				return nil, err
			}
			return bytes.TrimRight(b, "\r\n"), nil
		}
		if p, ok := os.LookupEnv(env); ok {
			if path, isFile := strings.CutPrefix(p, "FILE:"); isFile {
				return secret(path, "", flag)()
			}
			return []byte(p), nil
		}
		return nil, fmt.Errorf("no password: give %s or set %s", flag, env)
	}
}
