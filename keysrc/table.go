package keysrc

import (
	"strings"
	"time"
)

// Backend is one kind of key source as the command line offers it. Its row in Backends is
// the one place its flag, environment variable and mount option are named: the commands'
// flags, the mount helper's options and the "no source" hints are all built from the rows.
type Backend struct {
	Flag       string   // names a source of this kind: "keyring" is --keyring
	Env        string   // stands in for the flag
	Option     string   // the mount helper's name=value option; "" when a value may hold commas, which separate options
	Usage      string   // what the flag's value is
	Repeatable bool     // the flag may be given more than once
	Secret     *Secret  // where a password comes from, for sources that may be encrypted
	Timeout    *Timeout // how long one answer may take, for sources that may hang
	Retry      *Timeout // how long a key the source did not have is not asked for again
	// Open makes the sources the flag's values name. It is called only when there are values.
	Open func(values []string, with Settings) ([]Source, error)
}

// Secret is where the password of an encrypted source comes from: a file a flag names, or the
// value itself in an environment variable. Never a flag's value: that would show in ps.
type Secret struct {
	FileFlag   string // names the file holding the password
	FileEnv    string // stands in for FileFlag
	FileOption string // the mount helper's option for FileFlag
	Env        string // holds the password itself
	Usage      string
}

// Timeout bounds how long a source may take to answer one look-up.
type Timeout struct {
	Flag, Env, Usage string
	Default          time.Duration
}

// Settings are what a backend's Secret and Timeout flags gave.
type Settings struct {
	Secret  func() ([]byte, error) // reads the password when a source first needs it
	Timeout time.Duration
	Retry   time.Duration
}

// Backends are the kinds of key source in the order a Chain of them is tried. Each row is
// declared next to its source; adding a backend is one file and one entry here.
var Backends = []Backend{keyringBackend, mariadbBackend, keyDirBackend, commandBackend}

// NoSourceHint tells how to give a key source, naming every backend's flag.
func NoSourceHint() string {
	flags := make([]string, len(Backends))
	for i, b := range Backends {
		flags[i] = "--" + b.Flag
	}
	list := strings.Join(flags, ", ")
	if n := len(flags); n > 1 {
		list = strings.Join(flags[:n-1], ", ") + " or " + flags[n-1]
	}
	return "use " + list
}

// openEach opens one source per value, for backends whose sources each take one value.
func openEach(values []string, open func(string) (Source, error)) ([]Source, error) {
	sources := make([]Source, 0, len(values))
	for _, v := range values {
		src, err := open(v)
		if err != nil {
			return nil, err
		}
		sources = append(sources, src)
	}
	return sources, nil
}
