package keysrc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// commandBackend has no mount option: a command line may hold commas, which separate mount
// options, so the mount helper takes it from the environment (/etc/default) instead.
var commandBackend = Backend{
	Flag: "key-command", Env: "MYSQLLOGFS_KEY_COMMAND",
	Usage: "command that prints the key whose ID it gets as its last argument and in $MYSQLLOGFS_KEY_ID (run by /bin/sh)",
	Timeout: &Timeout{Flag: "key-command-timeout", Env: "MYSQLLOGFS_KEY_COMMAND_TIMEOUT", Default: 10 * time.Second,
		Usage: "how long the key command may take"},
	Retry: &Timeout{Flag: "key-command-retry", Env: "MYSQLLOGFS_KEY_COMMAND_RETRY", Default: time.Minute,
		Usage: "how long a key the command did not have is not asked for again"},
	Open: func(lines []string, with Settings) ([]Source, error) {
		return openEach(lines, func(line string) (Source, error) { return NewCommand(line, with.Timeout, with.Retry), nil })
	},
}

// Command runs an external program to fetch a key: the hook for Vault, a cloud KMS or `pass`.
// The command line is run by /bin/sh with the key ID appended as its last argument, and in
// the environment as MYSQLLOGFS_KEY_ID; it prints the value on stdout (a text value loses one
// trailing newline) and exits 0, or exits non-zero when it does not have the key. Answers are
// kept for the life of the process (a key ID never changes its value in MySQL), "not found"
// for Retry. Look-ups of different IDs run at once, at most commandParallel; look-ups of one
// ID share one run; a key already fetched never waits for a run.
type Command struct {
	Line    string
	Timeout time.Duration
	Retry   time.Duration

	mu      sync.Mutex
	cache   map[string]Key
	misses  map[string]miss
	running map[string]*run
	slots   chan struct{}
}

type miss struct {
	err  error
	when time.Time
}

// run is one execution of the command, which look-ups of the same ID wait for.
type run struct {
	done chan struct{}
	key  Key
	err  error
}

// commandParallel bounds the commands running at once.
const commandParallel = 4

// NewCommand returns a source that runs line, waiting at most timeout for each answer and
// remembering a key it did not have for retry.
func NewCommand(line string, timeout, retry time.Duration) *Command {
	return &Command{Line: line, Timeout: timeout, Retry: retry, cache: map[string]Key{},
		misses: map[string]miss{}, running: map[string]*run{}, slots: make(chan struct{}, commandParallel)}
}

func (c *Command) Lookup(id, _ string) (Key, error) {
	if err := ValidID(id); err != nil {
		return Key{}, err
	}
	c.mu.Lock()
	if k, ok := c.cache[id]; ok {
		c.mu.Unlock()
		return k, nil
	}
	if m, ok := c.misses[id]; ok && time.Since(m.when) < c.Retry {
		c.mu.Unlock()
		return Key{}, m.err
	}
	r, ok := c.running[id]
	if !ok {
		r = &run{done: make(chan struct{})}
		c.running[id] = r
		go c.fetch(id, r)
	}
	c.mu.Unlock()
	<-r.done
	return r.key, r.err
}

// fetch runs the command for id and records what it said.
func (c *Command) fetch(id string, r *run) {
	c.slots <- struct{}{}
	r.key, r.err = c.runCommand(id)
	<-c.slots
	c.mu.Lock()
	delete(c.running, id)
	switch {
	case r.err == nil:
		c.cache[id] = r.key
	case errors.Is(r.err, ErrNotFound):
		c.misses[id] = miss{r.err, time.Now()}
	}
	c.mu.Unlock()
	close(r.done)
}

func (c *Command) runCommand(id string) (Key, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	// "$1" keeps the ID one argument whatever it contains; it never passes through the shell's
	// parser. A command that parses options should end them with "--".
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c.Line+` "$1"`, "mysqllogfs-key-command", id)
	cmd.Env = append(os.Environ(), "MYSQLLOGFS_KEY_ID="+id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return Key{}, fmt.Errorf("%s: no answer for %q within %s", c, id, c.Timeout)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() > 0 { // a command killed by a signal is asked again
		return Key{}, fmt.Errorf("%w: %s exited with status %d for %q%s", ErrNotFound, c, exit.ExitCode(), id, firstLine(stderr.String()))
	}
	if err != nil {
		return Key{}, fmt.Errorf("%s: %w", c, err)
	}
	value := trimTextNewline(stdout.Bytes())
	if len(value) == 0 {
		return Key{}, fmt.Errorf("%w: %s printed nothing for %q", ErrNotFound, c, id)
	}
	return Key{ID: id, Value: value}, nil
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
