package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

// keyFlags are the key source flags every command shares. None takes a secret: secrets come
// from files, the environment or the key command.
func keyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "keyring", EnvVars: []string{"MYSQLLOGFS_KEYRING"},
			Usage: "keyring file (keyring_file plugin data, component_keyring_file JSON or .cnf, Percona encrypted) or MySQL data directory; repeatable"},
		&cli.StringFlag{Name: "keyring-password-file", EnvVars: []string{"MYSQLLOGFS_KEYRING_PASSWORD_FILE"},
			Usage: "file holding the password of an encrypted keyring (or set MYSQLLOGFS_KEYRING_PASSWORD)"},
		&cli.StringSliceFlag{Name: "key-dir", EnvVars: []string{"MYSQLLOGFS_KEY_DIR"},
			Usage: "directory with one file per key ID holding the key (a mounted Kubernetes Secret); repeatable"},
		&cli.StringFlag{Name: "key-command", EnvVars: []string{"MYSQLLOGFS_KEY_COMMAND"},
			Usage: "command that prints the key whose ID it gets as its last argument (run by /bin/sh)"},
		&cli.DurationFlag{Name: "key-command-timeout", EnvVars: []string{"MYSQLLOGFS_KEY_COMMAND_TIMEOUT"}, Value: 10 * time.Second,
			Usage: "how long the key command may take"},
	}
}

// keySource chains the sources the flags name, in the order keyrings, key directories, command.
func keySource(c *cli.Context) (keysrc.Chain, error) {
	var chain keysrc.Chain
	password := keyringPassword(c.String("keyring-password-file"))
	for _, path := range c.StringSlice("keyring") {
		src, err := keysrc.OpenKeyring(path, password)
		if err != nil {
			return nil, err
		}
		chain = append(chain, src)
	}
	for _, dir := range c.StringSlice("key-dir") {
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			return nil, fmt.Errorf("--key-dir %s: not a readable directory", dir)
		}
		chain = append(chain, keysrc.KeyDir(dir))
	}
	if line := c.String("key-command"); line != "" {
		chain = append(chain, keysrc.NewCommand(line, c.Duration("key-command-timeout")))
	}
	return chain, nil
}

// keyringPassword reads an encrypted keyring's password when it is needed, from the file or
// from MYSQLLOGFS_KEYRING_PASSWORD.
func keyringPassword(file string) func() ([]byte, error) {
	return func() ([]byte, error) {
		if file != "" {
			b, err := os.ReadFile(file)
			if err != nil {
				return nil, err
			}
			return bytes.TrimRight(b, "\r\n"), nil
		}
		if p, ok := os.LookupEnv("MYSQLLOGFS_KEYRING_PASSWORD"); ok {
			return []byte(p), nil
		}
		return nil, errors.New("no password: give --keyring-password-file or set MYSQLLOGFS_KEYRING_PASSWORD")
	}
}
