package authkeys

import (
	"fmt"
	"strings"

	pkgerrors "github.com/pkg/errors"
)

// refusedUnquoted are the bytes that mean more than themselves to sh (or
// to bash or zsh) outside quotes: operators, redirections, expansions,
// globs, comments, history and negation. CommandArgs refuses them anywhere
// unquoted, even where a given shell would read them literally.
const refusedUnquoted = ";|&<>`$()*?[]~{}#!"

// reservedWords are the shell words that change the meaning of a command
// when they come first, unquoted (POSIX, bash and zsh).
var reservedWords = map[string]bool{
	"if": true, "then": true, "else": true, "elif": true, "fi": true,
	"case": true, "esac": true, "for": true, "while": true, "until": true,
	"do": true, "done": true, "in": true, "function": true, "select": true,
	"time": true, "coproc": true, "foreach": true, "end": true, "repeat": true,
	"nocorrect": true, "noglob": true,
}

// CommandArgs splits a forced command into the argv that `sh -c command`
// would run, for simple commands only. It follows POSIX quoting: words
// are separated by unquoted spaces and tabs; 'single quotes' keep
// everything literally; inside "double quotes" a backslash escapes only
// $ ` " and \ and is otherwise literal; outside quotes a backslash escapes
// any byte. Empty quotes give an empty word.
//
// It refuses, with an error, whatever a plain word split cannot reproduce
// faithfully:
//   - unquoted ; | & < > ` $ ( ) * ? [ ] ~ { } # and !
//   - $ or ` inside double quotes;
//   - newlines and other control characters (tab excepted), even quoted;
//   - unterminated quotes and a trailing backslash;
//   - a first word that is a shell reserved word (if, while, time, ...) or
//     a variable assignment (NAME=value), and any word starting with an
//     unquoted '=' (zsh expands it);
//   - an empty command.
//
// The result never contains a NUL byte.
func CommandArgs(command string) ([]string, error) {
	for i := 0; i < len(command); i++ {
		switch c := command[i]; {
		case c == '\n':
			return nil, refuse(command, i, "newline")
		case c < 0x20 && c != '\t' || c == 0x7f:
			return nil, refuse(command, i, fmt.Sprintf("control character 0x%02x", c))
		}
	}
	var (
		words     []string
		word      []byte
		inWord    bool
		wordStart int
		first     string // the first word as written, quotes included
	)
	for i := 0; i < len(command); {
		c := command[i]
		if !inWord && c != ' ' && c != '\t' {
			if c == '=' {
				return nil, refuse(command, i, "unquoted '=' starting a word")
			}
			inWord, wordStart = true, i
		}
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				if len(words) == 0 {
					first = command[wordStart:i]
				}
				words = append(words, string(word))
				word, inWord = word[:0], false
			}
			i++
		case c == '\'':
			j := strings.IndexByte(command[i+1:], '\'')
			if j < 0 {
				return nil, refuse(command, i, "unterminated single quote")
			}
			word = append(word, command[i+1:i+1+j]...)
			i += j + 2
		case c == '"':
			var err error
			if word, i, err = doubleQuoted(command, i, word); err != nil {
				return nil, err
			}
		case c == '\\':
			if i+1 == len(command) {
				return nil, refuse(command, i, "trailing backslash")
			}
			word = append(word, command[i+1])
			i += 2
		case strings.IndexByte(refusedUnquoted, c) >= 0:
			return nil, refuse(command, i, fmt.Sprintf("unquoted %q", c))
		default:
			word = append(word, c)
			i++
		}
	}
	if inWord {
		if len(words) == 0 {
			first = command[wordStart:]
		}
		words = append(words, string(word))
	}
	switch {
	case len(words) == 0:
		return nil, pkgerrors.Errorf("forced command %q is empty", command)
	case reservedWords[first]:
		return nil, refuse(command, 0, fmt.Sprintf("shell reserved word %q", first))
	case isAssignment(first):
		return nil, refuse(command, 0, fmt.Sprintf("variable assignment %q", first))
	}
	return words, nil
}

// doubleQuoted appends to word the content of the double-quoted string
// that starts at command[open], and returns the index after its closing
// quote.
func doubleQuoted(command string, open int, word []byte) ([]byte, int, error) {
	for i := open + 1; i < len(command); i++ {
		switch c := command[i]; c {
		case '"':
			return word, i + 1, nil
		case '\\':
			if i+1 < len(command) && strings.IndexByte("$`\"\\", command[i+1]) >= 0 {
				i++
				word = append(word, command[i])
			} else {
				word = append(word, c)
			}
		case '$', '`':
			return nil, 0, refuse(command, i, fmt.Sprintf("%q inside double quotes", c))
		default:
			word = append(word, c)
		}
	}
	return nil, 0, refuse(command, open, "unterminated double quote")
}

// isAssignment reports whether the word, as written, is NAME=..., which
// sh takes as a variable assignment rather than the command name.
func isAssignment(word string) bool {
	name, _, ok := strings.Cut(word, "=")
	if !ok || name == "" || '0' <= name[0] && name[0] <= '9' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func refuse(command string, at int, what string) error {
	return pkgerrors.Errorf("forced command %q: %s at byte %d: not a simple command that can run without a shell", command, what, at)
}
