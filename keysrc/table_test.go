package keysrc_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

// Every backend is fully declared, by the project's naming rules (--flag, MYSQLLOGFS_FLAG,
// flag_option), and no two share a name. Only the key command has no mount option: its value
// may hold commas, which separate mount options.
func TestBackendsTable(t *testing.T) {
	seen := map[string]bool{}
	unique := func(kind, name string) {
		t.Helper()
		if seen[kind+" "+name] {
			t.Errorf("%s %q declared twice", kind, name)
		}
		seen[kind+" "+name] = true
	}
	named := func(flag, env, option string) {
		t.Helper()
		if flag == "" || strings.HasPrefix(flag, "-") {
			t.Errorf("flag %q: want a name without dashes", flag)
		}
		if want := "MYSQLLOGFS_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_")); env != want {
			t.Errorf("--%s: environment variable %q, want %q", flag, env, want)
		}
		if want := strings.ReplaceAll(flag, "-", "_"); option != "" && option != want {
			t.Errorf("--%s: mount option %q, want %q", flag, option, want)
		}
		unique("flag", flag)
		unique("env", env)
		if option != "" {
			unique("option", option)
		}
	}
	if len(keysrc.Backends) == 0 {
		t.Fatal("no backends")
	}
	for _, b := range keysrc.Backends {
		named(b.Flag, b.Env, b.Option)
		if b.Usage == "" || b.Open == nil {
			t.Errorf("--%s: no usage or no constructor", b.Flag)
		}
		if (b.Option == "") != (b.Flag == "key-command") {
			t.Errorf("--%s: mount option %q; every source but the key command has one", b.Flag, b.Option)
		}
		if s := b.Secret; s != nil {
			named(s.FileFlag, s.FileEnv, s.FileOption)
			if s.FileOption == "" || s.Env == "" || s.Usage == "" {
				t.Errorf("--%s: secret %+v lacks a mount option, a variable or a usage", b.Flag, *s)
			}
			unique("env", s.Env)
		}
		if tm := b.Timeout; tm != nil {
			named(tm.Flag, tm.Env, "")
			if tm.Usage == "" || tm.Default <= 0 {
				t.Errorf("--%s: timeout %+v lacks a usage or a default", b.Flag, *tm)
			}
		}
	}
}

// Sources are tried keyrings first, the key command last (README's "Key flags").
func TestBackendsOrder(t *testing.T) {
	var flags []string
	for _, b := range keysrc.Backends {
		flags = append(flags, b.Flag)
	}
	if got, want := strings.Join(flags, " "), "keyring mariadb-keys key-dir key-command"; got != want {
		t.Errorf("order %q, want %q", got, want)
	}
}

// With no source given, a look-up says how to give one, naming every source flag.
func TestNoSourceHintNamesEveryFlag(t *testing.T) {
	_, err := keysrc.Chain{}.Lookup("some-key", keysrc.AnyOwner)
	if !errors.Is(err, keysrc.ErrNotFound) {
		t.Fatalf("empty chain: %v, want a not-found error", err)
	}
	for _, b := range keysrc.Backends {
		if !strings.Contains(keysrc.NoSourceHint(), "--"+b.Flag) || !strings.Contains(err.Error(), "--"+b.Flag) {
			t.Errorf("hint %q, error %q: --%s missing", keysrc.NoSourceHint(), err, b.Flag)
		}
	}
}

// Each backend opens one source per value, and refuses a value that names nothing.
func TestBackendsOpen(t *testing.T) {
	dir := t.TempDir()
	for _, b := range keysrc.Backends {
		if b.Flag == "key-command" {
			srcs, err := b.Open([]string{"false"}, keysrc.Settings{Timeout: b.Timeout.Default})
			if err != nil || len(srcs) != 1 {
				t.Errorf("--%s: %d sources, %v", b.Flag, len(srcs), err)
			}
			continue
		}
		if _, err := b.Open([]string{dir + "/absent"}, keysrc.Settings{}); err == nil {
			t.Errorf("--%s: a missing path opened", b.Flag)
		}
	}
}
