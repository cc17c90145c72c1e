// Package crypto turns encrypted and compressed MySQL logs into their exact plaintext. For a
// source file it recognises the kind, derives the file key from the keyring, and returns a
// Reader: an io.ReaderAt over the plaintext with its size, safe for concurrent use. It knows
// nothing of FUSE or the command line. The byte formats are described in docs/formats.md.
package crypto

import (
	"bytes"
	"regexp"
)

// Kind says how a source file is turned into plaintext.
type Kind string

const (
	KindPlain         Kind = "plain"          // passed through unchanged
	KindMySQLBinlog   Kind = "mysql-binlog"   // MySQL 8.0.14+ encrypted binary or relay log
	KindMariaDBBinlog Kind = "mariadb-binlog" // MariaDB 10.1.7+ encrypted binary log
	KindAuditLog      Kind = "audit-log"      // encrypted and/or compressed audit log
	KindPlainBinlog   Kind = "binlog"         // an unencrypted binlog, passed through
	KindUnrecognised  Kind = "unrecognised"   // named like an audit log but not one
)

// Info is what a file's name and first bytes say about it, before any key is used.
type Info struct {
	Kind       Kind
	PlainName  string // the name the plaintext is shown under
	KeyID      string // the keyring ID of the key that decrypts it; "" when not encrypted
	Encrypted  bool
	Compressed bool
}

var (
	encryptedBinlogMagic = []byte{0xfd, 'b', 'i', 'n'}
	binlogMagic          = []byte{0xfe, 'b', 'i', 'n'}
	gzipMagic            = []byte{0x1f, 0x8b}
)

// HeadSize is how many leading bytes Identify needs.
const HeadSize = binlogHeaderSize

// auditName matches the audit log names of docs/formats.md section 3.1: the plaintext name,
// then ".gz" when compressed, then ".<password id>.enc" (8.0.17+) or a bare ".enc" when encrypted.
var auditName = regexp.MustCompile(`^(.+?)(\.gz)?(?:\.(\d{8}T\d{6}-\d+))?(\.enc)$|^(.+\.log)(\.gz)$`)

// auditKeyPrefix is prepended to a password ID to form its keyring ID; before 8.0.17 the
// single password is stored under the bare prefix.
const auditKeyPrefix = "audit_log"

// PlainName is the name a source file is shown under: audit logs drop ".gz" and
// ".<password id>.enc"; everything else keeps its name.
func PlainName(name string) string {
	if m := auditName.FindStringSubmatch(name); m != nil {
		if m[1] != "" {
			return m[1]
		}
		return m[5]
	}
	return name
}

// Identify tells a file's kind from its name and its first HeadSize bytes (fewer for a short
// file). It reads no key.
func Identify(name string, head []byte) Info {
	if bytes.HasPrefix(head, encryptedBinlogMagic) {
		info := Info{Kind: KindMySQLBinlog, PlainName: name, Encrypted: true}
		if h, err := ParseBinlogHeader(head); err == nil {
			info.KeyID = h.KeyID
		}
		return info
	}
	if _, ok := parseMariaDBStart(head); ok {
		return Info{Kind: KindMariaDBBinlog, PlainName: name, KeyID: mariadbKeyID, Encrypted: true}
	}
	m := auditName.FindStringSubmatch(name)
	switch {
	case m == nil && bytes.HasPrefix(head, binlogMagic):
		return Info{Kind: KindPlainBinlog, PlainName: name}
	case m == nil:
		return Info{Kind: KindPlain, PlainName: name}
	case m[4] == ".enc":
		keyID := auditKeyPrefix
		if m[3] != "" {
			keyID += "-" + m[3]
		}
		info := Info{Kind: KindAuditLog, PlainName: m[1], KeyID: keyID, Encrypted: true, Compressed: m[2] != ""}
		if len(head) > 0 && !bytes.HasPrefix(head, []byte("Salted__")[:min(8, len(head))]) {
			info.Kind = KindUnrecognised
		}
		return info
	default:
		info := Info{Kind: KindAuditLog, PlainName: m[5], Compressed: true}
		if !bytes.HasPrefix(head, gzipMagic) {
			info.Kind = KindUnrecognised
		}
		return info
	}
}

// rotatedName matches the timestamp the server puts into a rotated audit log's name
// ("audit.20190415T151322.log", Percona may add "-N"); the active file has none.
var rotatedName = regexp.MustCompile(`\.\d{8}T\d{6}(-\d+)?\.`)

// MayBeUnfinished reports whether a file may still be being written by the server: the active
// audit log, whose plaintext name carries no rotation timestamp. A rotated log was closed, so
// a missing final block there means damage.
func MayBeUnfinished(plainName string) bool {
	return !rotatedName.MatchString(plainName)
}
