package keysrc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

var keyDirBackend = Backend{
	Flag: "key-dir", Env: "MYSQLLOGFS_KEY_DIR", Option: "key_dir", Repeatable: true,
	Usage: "directory with one file per key ID holding the key (a mounted Kubernetes Secret)",
	Open:  func(dirs []string, _ Settings) ([]Source, error) { return openEach(dirs, openKeyDir) },
}

// openKeyDir refuses a directory it cannot read at once, rather than at the first look-up.
func openKeyDir(dir string) (Source, error) {
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("--key-dir %s: not a readable directory", dir)
	}
	return KeyDir(dir), nil
}

// KeyDir is a directory with one file per key ID holding the raw value, the way Kubernetes
// mounts a Secret. A text value loses one trailing newline; binary values are taken as they are.
type KeyDir string

func (d KeyDir) Lookup(id, _ string) (Key, error) {
	if !validFileName(id) {
		return Key{}, notFound(d, id)
	}
	value, err := os.ReadFile(filepath.Join(string(d), id))
	if errors.Is(err, fs.ErrNotExist) {
		return Key{}, notFound(d, id)
	}
	if err != nil {
		return Key{}, fmt.Errorf("key directory: %w", err)
	}
	return Key{ID: id, Value: trimTextNewline(value)}, nil
}

// List skips hidden entries, which include Kubernetes' "..data" bookkeeping links.
func (d KeyDir) List() ([]Key, error) {
	entries, err := os.ReadDir(string(d))
	if err != nil {
		return nil, fmt.Errorf("key directory: %w", err)
	}
	var keys []Key
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		k, err := d.Lookup(e.Name(), AnyOwner)
		if err != nil {
			continue // a subdirectory or an unreadable entry is not a key
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func (d KeyDir) String() string { return "key directory " + string(d) }

func validFileName(id string) bool {
	return id != "" && !strings.ContainsAny(id, "/\x00") && !strings.HasPrefix(id, ".")
}
