// noteverify: checks a C2SP signed note with golang.org/x/mod/sumdb/note, the
// reference implementation, for boltseal's integration tests.
//
// Usage: noteverify VKEY_FILE NOTE_FILE
// Prints the note text and exits 0 if the note verifies with the vkey;
// otherwise prints the error on stderr and exits 1.
package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

func run() error {
	if len(os.Args) != 3 {
		return fmt.Errorf("usage: noteverify VKEY_FILE NOTE_FILE")
	}
	vkey, err := os.ReadFile(os.Args[1])
	if err != nil {
		return err
	}
	msg, err := os.ReadFile(os.Args[2])
	if err != nil {
		return err
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		return fmt.Errorf("vkey: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return err
	}
	_, err = os.Stdout.WriteString(n.Text)
	return err
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "noteverify:", err)
		os.Exit(1)
	}
}
