// Command mysqllogfs shows encrypted MySQL binary, relay and audit logs as plaintext: through a
// read-only FUSE mount, or with cat, inspect and keys where FUSE is not available.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:                 "mysqllogfs",
		Usage:                "read encrypted MySQL binary, relay and audit logs as plaintext",
		Version:              version(),
		Commands:             commands(),
		HideHelpCommand:      true,
		EnableBashCompletion: true, // the hidden --generate-bash-completion the scripts call
	}
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version, commit and Go version"}
	cli.VersionPrinter = func(c *cli.Context) { fmt.Println(c.App.Version) }
	args, err := helperArgs(os.Args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mysqllogfs:", err)
		os.Exit(1)
	}
	os.Args = args // a detached mount runs itself again with these
	if err := app.Run(args); err != nil {
		var failed *filesFailed
		if !errors.As(err, &failed) {
			fmt.Fprintln(os.Stderr, "mysqllogfs:", err)
		}
		os.Exit(1)
	}
}

func commands() []*cli.Command {
	all := []*cli.Command{
		catCommand(),
		inspectCommand(),
		keysCommand(),
		verifyCommand(),
		eventsCommand(),
		mountCommand(),
		demoCommand(),
		versionCommand(),
		completionCommand(),
		manCommand(),
	}
	for _, c := range all {
		c.HideHelpCommand = true // "help" is no word to complete after a command
	}
	return all
}

// filesFailed ends a command whose per-file errors were already reported on stderr.
type filesFailed struct{ n int }

func (f *filesFailed) Error() string { return fmt.Sprintf("%d file(s) failed", f.n) }

func failures(n int) error {
	if n == 0 {
		return nil
	}
	return &filesFailed{n}
}
