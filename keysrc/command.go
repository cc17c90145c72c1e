package keysrc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// commandBackend has no mount option: a command line may hold commas, which separate mount
// options, so the mount helper takes it from the environment (/etc/default) instead.
var commandBackend = Backend{
	Flag: "key-command", Env: "MYSQLLOGFS_KEY_COMMAND",
	Usage: "command that prints the key whose ID it gets as its last argument (run by /bin/sh)",
	Timeout: &Timeout{Flag: "key-command-timeout", Env: "MYSQLLOGFS_KEY_COMMAND_TIMEOUT", Default: 10 * time.Second,
		Usage: "how long the key command may take"},
	Open: func(lines []string, with Settings) ([]Source, error) {
		return openEach(lines, func(line string) (Source, error) { return NewCommand(line, with.Timeout), nil })
	},
}

// Command runs an external program to fetch a key: the hook for Vault, a cloud KMS or `pass`.
// The command line is run by /bin/sh with the key ID appended as its last argument; it prints
// the value on stdout (a text value loses one trailing newline) and exits 0, or exits non-zero
// when it does not have the key. Answers are kept for the life of the process: a key ID never
// changes its value in MySQL.
type Command struct {
	Line    string
	Timeout time.Duration

	mu    sync.Mutex
	cache map[string]Key
}

// NewCommand returns a source that runs line, waiting at most timeout for each answer.
func NewCommand(line string, timeout time.Duration) *Command {
	return &Command{Line: line, Timeout: timeout, cache: map[string]Key{}}
}

func (c *Command) Lookup(id, _ string) (Key, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.cache[id]; ok {
		return k, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	// "$1" keeps the ID one argument whatever it contains; it never passes through the shell's parser.
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c.Line+` "$1"`, "mysqllogfs-key-command", id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return Key{}, fmt.Errorf("%s: no answer for %q within %s", c, id, c.Timeout)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return Key{}, fmt.Errorf("%w: %s exited with status %d for %q%s", ErrNotFound, c, exit.ExitCode(), id, firstLine(stderr.String()))
	}
	if err != nil {
		return Key{}, fmt.Errorf("%s: %w", c, err)
	}
	value := trimTextNewline(stdout.Bytes())
	if len(value) == 0 {
		return Key{}, fmt.Errorf("%w: %s printed nothing for %q", ErrNotFound, c, id)
	}
	k := Key{ID: id, Value: value}
	c.cache[id] = k
	return k, nil
}

func (c *Command) List() ([]Key, error) { return nil, ErrCannotList }

// String names the program only: its arguments may carry tokens.
func (c *Command) String() string {
	name, _, _ := strings.Cut(strings.TrimSpace(c.Line), " ")
	return "key command " + name
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	if s == "" {
		return ""
	}
	return ": " + s
}
