package policy

// checkName validates a dataset name, or a pattern with its trailing '<'
// removed. It returns "" for a valid name, else the problem and the byte
// offset where it was found. The problems are constants, so the check
// does not allocate.
//
// Allowed: components of [A-Za-z0-9_.:-] and space, separated by single
// '/'; no leading or trailing '/', no leading '-', no "." or ".."
// component. '@', '#' and '%' are refused with their own message.
func checkName(s string) (problem string, at int) {
	if s == "" {
		return "empty name", 0
	}
	if s[0] == '/' {
		return "leading '/'", 0
	}
	if s[0] == '-' {
		return "leading '-'", 0
	}
	if s[len(s)-1] == '/' {
		return "trailing '/'", len(s) - 1
	}
	start := 0 // start of the current component
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '/' {
			switch s[start:i] {
			case "":
				return "empty component ('//')", i
			case ".", "..":
				return "'.' or '..' component", start
			}
			start = i + 1
			continue
		}
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_', c == '.', c == ':', c == '-', c == ' ':
		case c == '@':
			return "'@' (snapshot names are not datasets)", i
		case c == '#':
			return "'#' (bookmark names are not datasets)", i
		case c == '%':
			return "'%' (reserved by ZFS)", i
		case c == '<':
			return "'<' is only allowed at the end", i
		default:
			return "invalid character", i
		}
	}
	return "", 0
}
