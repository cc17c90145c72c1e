package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
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
		&cli.StringSliceFlag{Name: "mariadb-keys", EnvVars: []string{"MYSQLLOGFS_MARIADB_KEYS"},
			Usage: "MariaDB file_key_management key file (plain or encrypted); repeatable"},
		&cli.StringFlag{Name: "mariadb-keys-secret-file", EnvVars: []string{"MYSQLLOGFS_MARIADB_KEYS_SECRET_FILE"},
			Usage: "file holding the filekey of an encrypted MariaDB key file (or set MYSQLLOGFS_MARIADB_KEYS_SECRET)"},
		&cli.DurationFlag{Name: "key-command-timeout", EnvVars: []string{"MYSQLLOGFS_KEY_COMMAND_TIMEOUT"}, Value: 10 * time.Second,
			Usage: "how long the key command may take"},
	}
}

// keySource chains the sources the flags name, in the order keyrings, MariaDB key files, key
// directories, command.
func keySource(c *cli.Context) (keysrc.Chain, error) {
	var chain keysrc.Chain
	password := secret(c.String("keyring-password-file"), "MYSQLLOGFS_KEYRING_PASSWORD", "--keyring-password-file")
	for _, path := range c.StringSlice("keyring") {
		src, err := keysrc.OpenKeyring(path, password)
		if err != nil {
			return nil, err
		}
		chain = append(chain, src)
	}
	filekey := secret(c.String("mariadb-keys-secret-file"), "MYSQLLOGFS_MARIADB_KEYS_SECRET", "--mariadb-keys-secret-file")
	for _, path := range c.StringSlice("mariadb-keys") {
		src, err := keysrc.OpenMariaDBKeyFile(path, filekey)
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
