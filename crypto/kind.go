// Package crypto is the format layer: it turns encrypted and compressed MySQL logs into their
// exact plaintext. For a source file it recognises the format (one file per format, registered
// in formats), derives the file key from the keyring, and returns a Reader: an io.ReaderAt
// over the plaintext with its size, safe for concurrent use. The rules of each format live
// here: which logs may be unfinished, when a size is proven, what verify checks. Ciphers,
// inflate and source access are the packages below it; it knows nothing of FUSE or the command
// line. The byte formats are described in docs/formats.md.
package crypto

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
	Compressed bool // decoded in order: reads far from the last one cost more than their length
}

var (
	encryptedBinlogMagic = []byte{0xfd, 'b', 'i', 'n'}
	binlogMagic          = []byte{0xfe, 'b', 'i', 'n'}
	gzipMagic            = []byte{0x1f, 0x8b}
)

// HeadSize is how many leading bytes Identify needs.
const HeadSize = binlogHeaderSize

// PlainName is the name a source file is shown under: audit logs drop ".gz" and
// ".<password id>.enc"; everything else keeps its name.
func PlainName(name string) string { return Identify(name, nil).PlainName }
