package keysrc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

var keyringBackend = Backend{
	Flag: "keyring", Env: "MYSQLLOGFS_KEYRING", Option: "keyring", Repeatable: true,
	Usage: "keyring file (keyring_file plugin data, component_keyring_file JSON or .cnf, Percona encrypted) or MySQL data directory",
	Secret: &Secret{FileFlag: "keyring-password-file", FileEnv: "MYSQLLOGFS_KEYRING_PASSWORD_FILE",
		FileOption: "keyring_password_file", Env: "MYSQLLOGFS_KEYRING_PASSWORD",
		Usage: "file holding the password of an encrypted keyring"},
	Open: func(paths []string, with Settings) ([]Source, error) {
		return openEach(paths, func(path string) (Source, error) { return OpenKeyring(path, with.Secret) })
	},
}

// OpenKeyring opens a keyring file or MySQL data directory, telling the format apart by content:
// keyring_file plugin data, component_keyring_file JSON or its .cnf, or Percona's encrypted
// component keyring (which needs password). A directory is searched for the component's
// configuration, as the server does. The file is read again whenever it changes on disk, so a
// rotation on a running server is seen.
func OpenKeyring(path string, password func() ([]byte, error)) (Source, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if info.IsDir() {
		cnf, err := findComponentConfig(path)
		if err != nil {
			return nil, err
		}
		return OpenKeyring(cnf, password)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	switch {
	case bytes.HasPrefix(data, []byte(pluginHeaderPrefix)):
		return newWatchedFile(path, "keyring_file", parsePluginKeyringWithBackup)
	case isComponentConfig(data):
		target, err := componentConfigTarget(path, data)
		if err != nil {
			return nil, err
		}
		return OpenKeyring(target, password)
	case len(bytes.TrimSpace(data)) == 0 || bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")):
		return newWatchedFile(path, "component_keyring_file", parseComponentKeyringFile)
	case looksLikePerconaEncrypted(data):
		return newPerconaKeyring(path, password)
	default:
		return nil, fmt.Errorf("keyring %s: %w", path, errUnknownKeyring)
	}
}

var errUnknownKeyring = errors.New("not a keyring format mysqllogfs can read. If it is an encrypted " +
	"keyring from MySQL Enterprise (keyring_encrypted_file or component_keyring_encrypted_file), " +
	"convert it to a plain keyring file with the server's keyring migration " +
	"(mysqld --keyring-migration-source=... or mysql_migrate_keyring) and point --keyring at the copy")

// watchedFile is a keyring file parsed on first use and again whenever it changes.
type watchedFile struct {
	path   string
	format string
	parse  func(path string) ([]Key, error)

	mu     sync.Mutex
	stamp  string
	keys   []Key
	failed string // the stamp of a version that could not be read, logged once
}

func newWatchedFile(path, format string, parse func(string) ([]Key, error)) (*watchedFile, error) {
	w := &watchedFile{path: path, format: format, parse: parse}
	if _, err := w.load(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *watchedFile) load() ([]Key, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	stamp := fileStamp(w.path) + fileStamp(w.path+backupSuffix)
	if stamp == w.stamp && w.keys != nil {
		return w.keys, nil
	}
	keys, err := w.parse(w.path)
	if err != nil && w.keys != nil {
		// Removed, or caught half-written: the keys already read stay good (a key ID never
		// changes its value), and a key that is nowhere is missing, not an I/O error.
		if stamp != w.failed {
			slog.Warn("keyring unreadable: keeping the keys read from it before", "keyring", w.path, "reason", err.Error())
			w.failed = stamp
		}
		return w.keys, nil
	}
	if err != nil {
		return nil, err
	}
	if keys == nil {
		keys = []Key{}
	}
	w.stamp, w.keys = stamp, keys
	return keys, nil
}

func (w *watchedFile) Lookup(id, owner string) (Key, error) {
	keys, err := w.load()
	if err != nil {
		return Key{}, err
	}
	return findKey(w, keys, id, owner)
}

func (w *watchedFile) List() ([]Key, error) { return w.load() }

func (w *watchedFile) String() string { return w.format + " " + w.path }

// fileStamp changes whenever the file is replaced or written.
func fileStamp(path string) string {
	info, err := os.Stat(path)
	if err != nil {
		return "-"
	}
	var ino uint64
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("%d:%d:%d;", ino, info.Size(), info.ModTime().UnixNano())
}

func isComponentConfig(data []byte) bool {
	var cnf struct {
		Path            *string `json:"path"`
		ReadLocalConfig *bool   `json:"read_local_config"`
	}
	return json.Unmarshal(data, &cnf) == nil && (cnf.Path != nil || cnf.ReadLocalConfig != nil)
}

// componentConfigTarget follows a component_keyring_file.cnf to the keyring it names.
func componentConfigTarget(cnfPath string, data []byte) (string, error) {
	var cnf struct {
		Path            string `json:"path"`
		ReadLocalConfig bool   `json:"read_local_config"`
	}
	if err := json.Unmarshal(data, &cnf); err != nil {
		return "", fmt.Errorf("keyring config %s: %w", cnfPath, err)
	}
	if cnf.Path == "" {
		return "", fmt.Errorf("keyring config %s names no \"path\"; give the MySQL data directory (with its local component_keyring_file.cnf) or the keyring file itself", cnfPath)
	}
	if !filepath.IsAbs(cnf.Path) {
		return filepath.Join(filepath.Dir(cnfPath), cnf.Path), nil
	}
	return cnf.Path, nil
}

// componentConfigName is the file component_keyring_file reads its settings from.
const componentConfigName = "component_keyring_file.cnf"

// globalConfigDirs are the plugin directories of MySQL's packages, where the global
// component configuration lives.
var globalConfigDirs = []string{"/usr/lib/mysql/plugin", "/usr/lib64/mysql/plugin", "/usr/local/mysql/lib/plugin"}

// findComponentConfig finds the component configuration for a data directory as the server
// does: the global file in the plugin directory, unless it defers to the data directory's own
// ("read_local_config": true), or the local file when there is no global one.
func findComponentConfig(datadir string) (string, error) {
	local := filepath.Join(datadir, componentConfigName)
	for _, dir := range globalConfigDirs {
		global := filepath.Join(dir, componentConfigName)
		data, err := os.ReadFile(global)
		if err != nil {
			continue
		}
		var cnf struct {
			ReadLocalConfig bool `json:"read_local_config"`
		}
		if json.Unmarshal(data, &cnf) == nil && !cnf.ReadLocalConfig {
			return global, nil
		}
		break
	}
	if _, err := os.Stat(local); err == nil {
		return local, nil
	}
	if _, err := os.Stat(filepath.Join(datadir, "component_keyring_encrypted_file.cnf")); err == nil {
		return "", fmt.Errorf("keyring %s: %w", datadir, errUnknownKeyring)
	}
	return "", fmt.Errorf("keyring: %s has no %s; give --keyring the keyring file itself", datadir, componentConfigName)
}
